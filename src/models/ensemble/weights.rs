//! Performance-weighted blending: each learner's weight is proportional to
//! the inverse of its mean absolute error over the recent validation
//! window, normalised to sum to 1.

/// A learner's forecasts and the outcomes over the adaptation window.
#[derive(Debug, Clone)]
pub struct TrackRecord<'a> {
    pub name: &'a str,
    pub predicted: &'a [f64],
    pub actual: &'a [f64],
}

/// Why a learner has no weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Excluded {
    pub name: String,
    pub reason: String,
}

/// Mean absolute errors below this count as this (a perfect fit would
/// otherwise take an infinite weight).
const MAE_FLOOR: f64 = 1e-12;

/// Weights over the last `window` forecasts of each learner, in input
/// order; learners with non-finite forecasts or no record get weight 0 and
/// are listed with the reason. All excluded -> every weight 0.
pub fn inverse_mae(records: &[TrackRecord], window: usize) -> (Vec<f64>, Vec<Excluded>) {
    let mut excluded = Vec::new();
    let inverse: Vec<f64> = records
        .iter()
        .map(|r| {
            let n = r.predicted.len().min(r.actual.len()).min(window);
            let (p, a) = (
                &r.predicted[r.predicted.len() - n..],
                &r.actual[r.actual.len() - n..],
            );
            if n == 0 {
                excluded.push(Excluded {
                    name: r.name.to_string(),
                    reason: "no validation forecasts".into(),
                });
                return 0.0;
            }
            if let Some(bad) = p.iter().find(|x| !x.is_finite()) {
                excluded.push(Excluded {
                    name: r.name.to_string(),
                    reason: format!("non-finite forecast ({bad})"),
                });
                return 0.0;
            }
            let mae = p.iter().zip(a).map(|(p, a)| (p - a).abs()).sum::<f64>() / n as f64;
            1.0 / mae.max(MAE_FLOOR)
        })
        .collect();
    let total: f64 = inverse.iter().sum();
    let weights = if total > 0.0 {
        inverse.iter().map(|w| w / total).collect()
    } else {
        vec![0.0; records.len()]
    };
    (weights, excluded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_inverse_of_recent_errors() {
        let actual = [0.0, 0.0, 0.0, 0.0];
        // Over the last 2 forecasts: a errs by 0.01, b by 0.02, c by 0.04.
        // (a's old large errors fall outside the window.)
        let a = [9.0, 9.0, 0.01, -0.01];
        let b = [0.0, 0.0, 0.02, -0.02];
        let c = [0.0, 0.0, 0.04, 0.04];
        let records = [
            TrackRecord {
                name: "a",
                predicted: &a,
                actual: &actual,
            },
            TrackRecord {
                name: "b",
                predicted: &b,
                actual: &actual,
            },
            TrackRecord {
                name: "c",
                predicted: &c,
                actual: &actual,
            },
        ];
        let (w, excluded) = inverse_mae(&records, 2);
        assert!(excluded.is_empty());
        // 1/0.01 : 1/0.02 : 1/0.04 = 4 : 2 : 1
        for (got, want) in w.iter().zip([4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        // Over all four, a's old errors count and it weighs least.
        let (w, _) = inverse_mae(&records, 4);
        assert!(w[0] < w[2] && w[2] < w[1], "{w:?}");
    }

    #[test]
    fn a_learner_with_non_finite_output_is_excluded_with_its_reason() {
        let actual = [0.01, -0.01];
        let good = [0.0, 0.0];
        let broken = [0.0, f64::NAN];
        let records = [
            TrackRecord {
                name: "good",
                predicted: &good,
                actual: &actual,
            },
            TrackRecord {
                name: "broken",
                predicted: &broken,
                actual: &actual,
            },
        ];
        let (w, excluded) = inverse_mae(&records, 50);
        assert_eq!(w, [1.0, 0.0]);
        assert_eq!(excluded[0].name, "broken");
        assert!(excluded[0].reason.contains("non-finite"));
    }
}
