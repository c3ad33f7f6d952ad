//! Standardising features and targets with the training rows' statistics.

/// Column-wise z-scores of the training rows and target (a constant column
/// keeps scale 1).
pub struct Standardiser {
    mean: Vec<f64>,
    sd: Vec<f64>,
    target_mean: f64,
    target_sd: f64,
}

fn mean_sd(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count().max(1) as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
}

impl Standardiser {
    pub fn fit(rows: &[Vec<f64>], targets: &[f64]) -> Self {
        let (mean, sd) = (0..rows[0].len())
            .map(|j| mean_sd(rows.iter().map(move |r| r[j])))
            .unzip();
        let (target_mean, target_sd) = mean_sd(targets.iter().copied());
        Standardiser {
            mean,
            sd,
            target_mean,
            target_sd,
        }
    }

    pub fn rows(&self, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .zip(self.mean.iter().zip(&self.sd))
                    .map(|(x, (m, s))| (x - m) / s)
                    .collect()
            })
            .collect()
    }

    pub fn targets(&self, ys: &[f64]) -> Vec<f64> {
        ys.iter()
            .map(|y| (y - self.target_mean) / self.target_sd)
            .collect()
    }

    pub fn unscale(&self, z: f64) -> f64 {
        self.target_mean + z * self.target_sd
    }
}
