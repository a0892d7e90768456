//! Band edges, exactly at each threshold, for every embedded table.

use mobius_insights::bands::{self, Band, Metric};

fn check(table: &str, cases: &[(Metric, f64, Band)]) {
    let table = bands::table(table).unwrap();
    for &(metric, value, expected) in cases {
        assert_eq!(table.classify(metric, value), expected, "{} {metric} = {value}", table.name());
    }
}

const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;
const MONTH: f64 = 30.0 * DAY;

/// Deployment frequency is the same in both tables.
fn frequency_cases() -> Vec<(Metric, f64, Band)> {
    use Band::*;
    use Metric::DeploymentFrequency as DF;
    vec![
        (DF, 3.0, Elite),
        (DF, 1.000_001, Elite),
        (DF, 1.0, High),
        (DF, 4.0 / 28.0, High),
        (DF, 1.0 / 7.0, High),
        (DF, 0.99 / 7.0, Medium),
        (DF, 1.0 / 30.0, Medium),
        (DF, 3.0 / 90.0, Medium),
        (DF, 0.99 / 30.0, Low),
        (DF, 0.0, Low),
    ]
}

#[test]
fn seed_2023_edges() {
    use Band::*;
    use Metric::{ChangeFailureRate as CFR, LeadTime as LT, RecoveryTime as RT};
    check("seed-2023", &frequency_cases());
    check(
        "seed-2023",
        &[
            (LT, 0.0, Elite),
            (LT, HOUR - 1.0, Elite),
            (LT, HOUR, High),
            (LT, WEEK, High),
            (LT, WEEK + 1.0, Medium),
            (LT, MONTH, Medium),
            (LT, MONTH + 1.0, Low),
            (CFR, 0.0, Elite),
            (CFR, 0.05, Elite),
            (CFR, 1.0 / 20.0, Elite),
            (CFR, 0.050_001, High),
            (CFR, 0.15, High),
            (CFR, 3.0 / 20.0, High),
            (CFR, 0.150_001, Medium),
            (CFR, 0.30, Medium),
            (CFR, 0.300_001, Low),
            (CFR, 1.0, Low),
            (RT, HOUR - 1.0, Elite),
            (RT, HOUR, High),
            (RT, DAY - 1.0, High),
            (RT, DAY, Medium),
            (RT, WEEK - 1.0, Medium),
            (RT, WEEK, Low),
        ],
    );
}

#[test]
fn dora_2024_edges() {
    use Band::*;
    use Metric::{ChangeFailureRate as CFR, LeadTime as LT, RecoveryTime as RT};
    check("dora-2024", &frequency_cases());
    check(
        "dora-2024",
        &[
            (LT, HOUR, Elite),
            (LT, DAY - 1.0, Elite),
            (LT, DAY, High),
            (LT, WEEK, High),
            (LT, WEEK + 1.0, Medium),
            (LT, MONTH, Medium),
            (LT, MONTH + 1.0, Low),
            (CFR, 0.05, Elite),
            (CFR, 0.050_001, High),
            (CFR, 0.10, High),
            (CFR, 0.20, High),
            (CFR, 0.200_001, Medium),
            (CFR, 0.40, Medium),
            (CFR, 0.400_001, Low),
            (RT, HOUR - 1.0, Elite),
            (RT, HOUR, High),
            (RT, DAY - 1.0, High),
            (RT, DAY, Medium),
            (RT, WEEK - 1.0, Medium),
            (RT, WEEK, Low),
        ],
    );
}

#[test]
fn tables_say_where_they_depart_from_their_source() {
    let table = bands::table("dora-2024").unwrap();
    assert!(table.notes().iter().any(|n| n.contains("not monotonic")));
    assert_eq!(bands::names().collect::<Vec<_>>(), ["seed-2023", "dora-2024"]);
}
