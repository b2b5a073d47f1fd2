//! The engine a front end asks for by name — `cpu`, `gpu`, `gpu:N`, `gpu:N,M,…`, `gpu:all` or
//! `auto` — the one list of those names, parsed once for the command line, the examples and
//! Python.

use std::fmt;
use std::str::FromStr;

use super::Backend;
use crate::error::{NmfError, Result};

/// Which engine to run on, before any device is opened: what `--backend` and Python's
/// `backend=` name. [`BackendChoice::open`] turns it into a [`Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The CPU engine.
    Cpu,
    /// The GPU engine: on the adapter of this index in
    /// [`GpuContext::adapters`](crate::GpuContext::adapters) (`gpu:N`), or on the one chosen
    /// by `NMF_GPU_ADAPTER`, `WGPU_ADAPTER_NAME` or power preference (`gpu`).
    Gpu(Option<usize>),
    /// Several GPUs on one fit ([`Backend::MultiGpu`]): the adapters of these indices
    /// (`gpu:0,1`; an index may repeat, opening two contexts on one adapter).
    GpuList(AdapterList),
    /// Every hardware adapter on one fit (`gpu:all`; every adapter when none is a hardware
    /// one): [`Backend::MultiGpu`], or [`Backend::Gpu`] when there is one.
    GpuAll,
    /// A hardware GPU when the data is large enough to gain from it, else the CPU
    /// ([`Backend::Auto`]).
    #[default]
    Auto,
}

/// Adapter indices of a multi-GPU choice (`gpu:0,1`), at most [`AdapterList::MAX`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterList {
    len: usize,
    indices: [usize; AdapterList::MAX],
}

impl AdapterList {
    /// The most adapters one list names.
    pub const MAX: usize = 16;

    /// The list of `indices` (2 to [`AdapterList::MAX`] of them), else `None`.
    pub fn new(indices: &[usize]) -> Option<AdapterList> {
        if indices.len() < 2 || indices.len() > Self::MAX {
            return None;
        }
        let mut list = AdapterList {
            len: indices.len(),
            indices: [0; Self::MAX],
        };
        list.indices[..indices.len()].copy_from_slice(indices);
        Some(list)
    }

    /// The indices, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices[..self.len]
    }
}

impl BackendChoice {
    /// The names accepted, as a user reads them.
    pub const NAMES: &'static str =
        "cpu, gpu, gpu:N (the adapter of index N), gpu:N,M,... (several adapters), gpu:all or auto";

    /// The name, as parsed (`gpu:1` for the adapter of index 1).
    pub fn name(self) -> String {
        self.to_string()
    }

    /// Whether this asks for the GPU engine.
    pub fn is_gpu(self) -> bool {
        matches!(
            self,
            BackendChoice::Gpu(_) | BackendChoice::GpuList(_) | BackendChoice::GpuAll
        )
    }

    /// The same choice on the adapter of `index` when it asks for the GPU without naming one
    /// (how each rank of an MPI job takes the GPU of its node-local rank).
    pub fn on_adapter_if_unnamed(self, index: usize) -> BackendChoice {
        match self {
            BackendChoice::Gpu(None) => BackendChoice::Gpu(Some(index)),
            other => other,
        }
    }

    /// Open the engine: the GPU's device now, so that a missing or unusable GPU is reported
    /// before any data is read.
    pub fn open(self) -> Result<Backend> {
        match self {
            BackendChoice::Cpu => Ok(Backend::Cpu),
            BackendChoice::Auto => Ok(Backend::Auto),
            #[cfg(feature = "gpu")]
            BackendChoice::Gpu(None) => crate::GpuContext::new().map(Backend::Gpu),
            #[cfg(feature = "gpu")]
            BackendChoice::Gpu(Some(index)) => {
                crate::GpuContext::on_adapter(index).map(Backend::Gpu)
            }
            #[cfg(feature = "gpu")]
            BackendChoice::GpuList(list) => open_all(list.indices()),
            #[cfg(feature = "gpu")]
            BackendChoice::GpuAll => {
                let adapters = crate::GpuContext::adapters();
                let hardware: Vec<usize> = (0..adapters.len())
                    .filter(|&k| adapters[k].device_type != wgpu::DeviceType::Cpu)
                    .collect();
                match (hardware.len(), adapters.len()) {
                    (_, 0) => Err(NmfError::GpuNoAdapter {
                        reason: "gpu:all found no adapter".into(),
                    }),
                    (0, count) => open_all(&(0..count).collect::<Vec<_>>()),
                    _ => open_all(&hardware),
                }
            }
            #[cfg(not(feature = "gpu"))]
            BackendChoice::Gpu(_) | BackendChoice::GpuList(_) | BackendChoice::GpuAll => {
                Err(NmfError::UnsupportedOption {
                    option: "the GPU engine",
                    requires: "the crate's `gpu` feature",
                })
            }
        }
    }
}

/// Contexts on the adapters of `indices`: [`Backend::Gpu`] for one, [`Backend::MultiGpu`] for
/// more (an index past the adapters is an error that lists them).
#[cfg(feature = "gpu")]
fn open_all(indices: &[usize]) -> Result<Backend> {
    let mut contexts = indices
        .iter()
        .map(|&k| crate::GpuContext::on_adapter(k))
        .collect::<Result<Vec<_>>>()?;
    match contexts.len() {
        1 => Ok(Backend::Gpu(contexts.remove(0))),
        _ => Ok(Backend::MultiGpu(contexts)),
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendChoice::Cpu => f.write_str("cpu"),
            BackendChoice::Gpu(None) => f.write_str("gpu"),
            BackendChoice::Gpu(Some(i)) => write!(f, "gpu:{i}"),
            BackendChoice::GpuList(list) => {
                let names: Vec<String> = list.indices().iter().map(|k| k.to_string()).collect();
                write!(f, "gpu:{}", names.join(","))
            }
            BackendChoice::GpuAll => f.write_str("gpu:all"),
            BackendChoice::Auto => f.write_str("auto"),
        }
    }
}

impl FromStr for BackendChoice {
    type Err = NmfError;

    /// `cpu`, `gpu`, `gpu:N`, `gpu:N,M,…`, `gpu:all` or `auto`, in any case, surrounding blanks
    /// ignored.
    fn from_str(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        let bad = || NmfError::InvalidParameter {
            name: "backend",
            value: text.to_string(),
            expected: BackendChoice::NAMES.to_string(),
        };
        match t.as_str() {
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu(None)),
            "auto" => Ok(BackendChoice::Auto),
            "gpu:all" => Ok(BackendChoice::GpuAll),
            _ => match t.strip_prefix("gpu:") {
                Some(n) if n.contains(',') => {
                    let indices = n
                        .split(',')
                        .map(|k| k.trim().parse::<usize>())
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|_| bad())?;
                    AdapterList::new(&indices)
                        .map(BackendChoice::GpuList)
                        .ok_or_else(bad)
                }
                Some(n) => n
                    .parse::<usize>()
                    .map(|i| BackendChoice::Gpu(Some(i)))
                    .map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself() {
        for choice in [
            BackendChoice::Cpu,
            BackendChoice::Gpu(None),
            BackendChoice::Gpu(Some(0)),
            BackendChoice::Gpu(Some(7)),
            BackendChoice::GpuAll,
            BackendChoice::GpuList(AdapterList::new(&[0, 1]).unwrap()),
            BackendChoice::GpuList(AdapterList::new(&[2, 0, 2]).unwrap()),
            BackendChoice::Auto,
        ] {
            assert_eq!(choice.name().parse::<BackendChoice>().ok(), Some(choice));
        }
        assert_eq!(
            " GPU:2 ".parse::<BackendChoice>().ok(),
            Some(BackendChoice::Gpu(Some(2)))
        );
    }

    #[test]
    fn other_names_are_refused_with_the_list() {
        let seventeen = format!("gpu:{}", vec!["0"; 17].join(","));
        for bad in [
            "", "gpu:", "gpu:-1", "gpu:x", "tpu", "gpu:1:2", "gpu:0,", "gpu:,1", "gpu:0,x",
            "gpu:alll", &seventeen,
        ] {
            let e = bad.parse::<BackendChoice>().err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|m| m.contains("gpu:N")),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn an_unnamed_gpu_takes_the_given_adapter() {
        assert_eq!(
            BackendChoice::Gpu(None).on_adapter_if_unnamed(3),
            BackendChoice::Gpu(Some(3))
        );
        assert_eq!(
            BackendChoice::Gpu(Some(1)).on_adapter_if_unnamed(3),
            BackendChoice::Gpu(Some(1))
        );
        assert_eq!(
            BackendChoice::Cpu.on_adapter_if_unnamed(3),
            BackendChoice::Cpu
        );
    }
}
