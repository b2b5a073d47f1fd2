//! A directory of images as a streaming source: the files are listed and their headers read
//! up front (the shape and every size check, as [`load_dir`](super::load_dir) does them), and
//! the pixels are decoded batch by batch, in parallel, in the same order, with the same size
//! policy and then the same [`Preprocess`], so the batches are the columns of the matrix
//! `load_dir` followed by `Preprocess::apply` would give, without ever holding it.

use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::preprocess::Preprocess;
use crate::error::{NmfError, Result};
use crate::io::image_dir::{copy_levels, decode, fit_to_size, list_images, probe_all, SizePolicy};
use crate::io::ReadOptions;
use crate::online::source::Pass;
use crate::online::Source;

/// Images decoded at once by one task.
const IMAGES_PER_TASK: usize = 8;

/// A directory of images streamed a batch at a time (see the module docs).
#[derive(Debug, Clone)]
pub struct ImageDirSource {
    names: Vec<PathBuf>,
    paths: Vec<PathBuf>,
    width: usize,
    height: usize,
    size: SizePolicy,
    preprocess: Preprocess,
    limit: u64,
    pass: Pass,
}

impl ImageDirSource {
    /// List the images under `dir` and read their headers (in parallel); the pixels are read
    /// later, batch by batch. Each decoded image is held to the default input limit.
    pub fn open(dir: impl AsRef<Path>, size: SizePolicy, preprocess: Preprocess) -> Result<Self> {
        Self::open_with(dir, size, preprocess, &ReadOptions::new())
    }

    /// [`open`](Self::open) with the limits of `options`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        size: SizePolicy,
        preprocess: Preprocess,
        options: &ReadOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let (names, paths) = list_images(dir, size)?;
        let limit = options.limit_bytes();
        let (_, (width, height)) = probe_all(&paths, size, limit)?;
        Ok(ImageDirSource {
            names,
            paths,
            width: width as usize,
            height: height as usize,
            size,
            preprocess,
            limit,
            pass: Pass::default(),
        })
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// The file of each column, relative to the directory, in order.
    pub fn names(&self) -> &[PathBuf] {
        &self.names
    }
}

impl Source for ImageDirSource {
    fn dim(&self) -> (usize, usize) {
        (self.width * self.height, self.paths.len())
    }

    fn rewind(&mut self) -> Result<()> {
        self.pass.rewind()
    }

    fn next_batch(&mut self, max_cols: usize) -> Result<Option<Array2<f32>>> {
        let (width, height) = (self.width, self.height);
        let (size, limit) = (self.size, self.limit);
        self.pass.next_batch(self.paths.len(), max_cols, |cols| {
            let (j0, b) = (cols.start, cols.len());
            // Decoded column-major (one image per row of `t`), then transposed once in memory.
            let mut t = Array2::<f32>::zeros((b, width * height));
            t.axis_chunks_iter_mut(Axis(0), IMAGES_PER_TASK)
                .into_par_iter()
                .zip(self.paths[cols].par_chunks(IMAGES_PER_TASK))
                .enumerate()
                .map(|(task, (mut block, paths))| {
                    for (k, (row, path)) in block.axis_iter_mut(Axis(0)).zip(paths).enumerate() {
                        let col = j0 + task * IMAGES_PER_TASK + k;
                        let grey = decode(path, limit)
                            .and_then(|g| fit_to_size(g, size, path))
                            .map_err(|e| NmfError::InStream {
                                origin: format!("{} (sample {col})", path.display()),
                                source: Box::new(e),
                            })?;
                        copy_levels(&grey, path, (width, height), "the images are", row)?;
                    }
                    Ok(())
                })
                .collect::<Vec<Result<()>>>()
                .into_iter()
                .collect::<Result<()>>()?;
            let mut batch = t.t().as_standard_layout().into_owned();
            drop(t);
            self.preprocess.apply(batch.view_mut());
            Ok(batch)
        })
    }

    fn describe(&self, col: usize) -> String {
        match self.paths.get(col) {
            Some(p) => format!("{} (sample {col})", p.display()),
            None => format!("sample {col}"),
        }
    }

    fn frame_shape(&self) -> Option<(usize, usize)> {
        Some((self.height, self.width))
    }
}
