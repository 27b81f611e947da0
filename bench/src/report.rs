//! Figures, their baselines and targets; the table and the JSON.

use serde_json::{Value, json};

/// Percentile (nearest rank) of sorted samples; 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p95, p99 of unsorted samples.
pub fn p50_95_99(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        percentile(samples, 50.0),
        percentile(samples, 95.0),
        percentile(samples, 99.0),
    )
}

#[derive(Debug, Clone, Copy)]
pub enum Better {
    Higher,
    Lower,
}

/// A gate: the seed's floor and our target, in the figure's unit.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub better: Better,
    pub seed: Option<f64>,
    pub ours: Option<f64>,
}

impl Target {
    pub fn at_most(seed: Option<f64>, ours: Option<f64>) -> Self {
        Self {
            better: Better::Lower,
            seed,
            ours,
        }
    }

    pub fn at_least(seed: Option<f64>, ours: Option<f64>) -> Self {
        Self {
            better: Better::Higher,
            seed,
            ours,
        }
    }

    fn met(&self, v: f64, t: f64) -> bool {
        match self.better {
            Better::Higher => v >= t,
            Better::Lower => v <= t,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
    /// The same figure for the baseline measured in the same run, if there is one.
    pub baseline: Option<f64>,
    pub target: Option<Target>,
    pub note: String,
}

impl Row {
    pub fn new(
        scenario: &'static str,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            scenario,
            figure: figure.into(),
            value,
            unit,
            baseline: None,
            target: None,
            note: String::new(),
        }
    }

    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }

    pub fn target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Self {
        self.note = n.into();
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline.filter(|b| *b != 0.0).map(|b| self.value / b)
    }

    fn met(&self) -> (Option<bool>, Option<bool>) {
        match self.target {
            None => (None, None),
            Some(t) => (
                t.seed.map(|s| t.met(self.value, s)),
                t.ours.map(|o| t.met(self.value, o)),
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        let (seed_met, ours_met) = self.met();
        json!({
            "scenario": self.scenario,
            "figure": self.figure,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio(),
            "target_seed": self.target.and_then(|t| t.seed),
            "target_ours": self.target.and_then(|t| t.ours),
            "seed_met": seed_met,
            "ours_met": ours_met,
            "note": self.note,
        })
    }
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn gate(t: &Target, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) => match t.better {
            Better::Higher => format!(">= {}", num(x)),
            Better::Lower => format!("<= {}", num(x)),
        },
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The table, as Markdown (so it can go into BENCHMARKS.md as printed).
pub fn table(rows: &[Row]) -> String {
    let header = [
        "scenario",
        "figure",
        "value",
        "unit",
        "baseline",
        "ratio",
        "seed gate",
        "our target",
        "met? (seed/ours)",
    ];
    let mut cells: Vec<[String; 9]> = Vec::new();
    for r in rows {
        let (seed_met, ours_met) = r.met();
        let (seed, ours) = match &r.target {
            Some(t) => (gate(t, t.seed), gate(t, t.ours)),
            None => ("-".into(), "-".into()),
        };
        cells.push([
            r.scenario.to_owned(),
            r.figure.clone(),
            num(r.value),
            r.unit.to_owned(),
            r.baseline.map_or("-".into(), num),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
            seed,
            ours,
            if r.target.is_some() {
                format!("{} / {}", yes_no(seed_met), yes_no(ours_met))
            } else {
                "-".into()
            },
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            widths[i] = widths[i].max(s.chars().count());
        }
    }
    let line = |cols: Vec<String>| {
        let mut s = String::from("|");
        for (i, c) in cols.iter().enumerate() {
            s.push_str(&format!(" {:<w$} |", c, w = widths[i]));
        }
        s
    };
    let mut out = vec![
        line(header.iter().map(|h| (*h).to_owned()).collect()),
        line(widths.iter().map(|w| "-".repeat(*w)).collect()),
    ];
    for c in cells {
        out.push(line(c.to_vec()));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("- {} / {}: {}", r.scenario, r.figure, r.note))
        .collect();
    if !notes.is_empty() {
        out.push(String::new());
        out.extend(notes);
    }
    out.join("\n")
}
