//! CVSS v3.x base scores, computed from the vector as the CVSS v3.1 specification (section
//! 7.1 and Appendix A's round-up) defines them. v2 and v4 vectors are not scored here.

/// The base score of a `CVSS:3.0/…` or `CVSS:3.1/…` vector, or `None` when it is not a
/// complete v3 vector.
pub fn base_score_v3(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !matches!(parts.next()?, "CVSS:3.0" | "CVSS:3.1") {
        return None;
    }
    let metric = |name: &str| -> Option<&str> {
        vector.split('/').skip(1).find_map(|p| p.strip_prefix(name)?.strip_prefix(':'))
    };
    let scope_changed = match metric("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let attack_vector = match metric("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let attack_complexity = match metric("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let privileges = match (metric("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let user_interaction = match metric("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let impact_of = |name: &str| -> Option<f64> {
        match metric(name)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (impact_of("C")?, impact_of("I")?, impact_of("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * attack_vector * attack_complexity * privileges * user_interaction;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed { 1.08 * (impact + exploitability) } else { impact + exploitability };
    Some(round_up(raw.min(10.0)))
}

/// CVSS v3.1's round-up to one decimal, done on integers so 4.000000001 does not become 4.1.
fn round_up(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 { scaled as f64 / 100_000.0 } else { ((scaled / 10_000) + 1) as f64 / 10.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_published_vectors() {
        for (vector, expected) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Some(9.8)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", Some(6.1)),
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Some(7.5)),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", Some(7.8)),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", Some(3.7)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", Some(10.0)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", Some(0.0)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", None),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", None),
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", None),
        ] {
            assert_eq!(base_score_v3(vector), expected, "{vector}");
        }
    }
}
