//! Labels from factors and clustering scores against values from scikit-learn 1.9
//! (`normalized_mutual_info_score`, `adjusted_rand_score`) and hand counts (purity).

use nmf_gpu::cluster::{
    adjusted_rand_index, labels_from_columns, labels_from_rows, normalized_mutual_info, purity,
};
use nmf_gpu::ndarray::array;
use nmf_gpu::NmfError;

/// Predicted labels, true labels, purity, NMI, ARI.
type Case<'a> = (&'a [usize], &'a [usize], f64, f64, f64);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn labels_are_argmax_of_columns_and_rows() {
    let h = array![
        [0.9f32, 0.1, 0.0, 0.3],
        [0.2, 0.8, 0.0, 0.3],
        [0.0, 0.5, 0.0, 0.4]
    ];
    // Column 2 is all zero: the tie goes to component 0.
    assert_eq!(labels_from_columns(h.view()), vec![0, 1, 0, 2]);
    assert_eq!(labels_from_rows(h.view()), vec![0, 1, 1]);
    assert_eq!(labels_from_rows(h.t()), labels_from_columns(h.view()));
}

#[test]
fn identical_and_renamed_partitions_score_one() {
    let truth = [0usize, 0, 1, 1, 1, 2, 2, 3];
    let renamed = [7usize, 7, 3, 3, 3, 100, 100, 0];
    for pred in [&truth, &renamed] {
        assert!(close(normalized_mutual_info(pred, &truth).unwrap(), 1.0));
        assert!(close(adjusted_rand_index(pred, &truth).unwrap(), 1.0));
        assert!(close(purity(pred, &truth).unwrap(), 1.0));
    }
}

#[test]
fn small_cases_match_scikit_learn() {
    // (pred, truth, purity by hand, NMI and ARI from scikit-learn)
    let cases: [Case; 4] = [
        (
            &[0, 0, 0, 1, 1, 1],
            &[0, 0, 1, 1, 2, 2],
            4.0 / 6.0,
            0.5158037429793889,
            0.24242424242424243,
        ),
        (
            &[1, 1, 0, 0, 3, 3, 3, 5],
            &[7, 7, 7, 2, 2, 9, 9, 9],
            6.0 / 8.0,
            0.5577965290899926,
            0.15789473684210525,
        ),
        // Singletons against one class: no information, chance-level pairs.
        (&[0, 1, 2, 3], &[0, 0, 0, 0], 1.0, 0.0, 0.0),
        // Independent halves: ARI at its lower range.
        (&[0, 0, 1, 1], &[0, 1, 0, 1], 0.5, 0.0, -0.5),
    ];
    for (pred, truth, p, nmi, ari) in cases {
        let got = (
            purity(pred, truth).unwrap(),
            normalized_mutual_info(pred, truth).unwrap(),
            adjusted_rand_index(pred, truth).unwrap(),
        );
        assert!(close(got.0, p), "{pred:?} {truth:?}: purity {}", got.0);
        assert!(close(got.1, nmi), "{pred:?} {truth:?}: NMI {}", got.1);
        assert!(close(got.2, ari), "{pred:?} {truth:?}: ARI {}", got.2);
        // NMI and ARI are symmetric.
        assert!(close(normalized_mutual_info(truth, pred).unwrap(), nmi));
        assert!(close(adjusted_rand_index(truth, pred).unwrap(), ari));
    }
    // One cluster in both: a perfect trivial match, as scikit-learn.
    assert_eq!(normalized_mutual_info(&[5, 5, 5], &[1, 1, 1]).unwrap(), 1.0);
    assert_eq!(adjusted_rand_index(&[5, 5, 5], &[1, 1, 1]).unwrap(), 1.0);
    assert_eq!(adjusted_rand_index(&[3], &[4]).unwrap(), 1.0);
}

#[test]
fn bad_label_vectors_are_errors() {
    for f in [purity, normalized_mutual_info, adjusted_rand_index] {
        assert!(matches!(
            f(&[0, 1], &[0, 1, 2]),
            Err(NmfError::LabelLengthMismatch { pred: 2, truth: 3 })
        ));
        assert!(matches!(f(&[], &[]), Err(NmfError::EmptyLabels)));
    }
    let msg = purity(&[0], &[0, 1]).unwrap_err().to_string();
    assert!(msg.contains("1 entries") && msg.contains("2"), "{msg}");
}
