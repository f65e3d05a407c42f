//! CVSS v3.0/v3.1 base scores from vector strings (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`),
//! to give OSV records without a qualitative severity one. Other CVSS versions are not scored.

use super::Severity;

/// The base score of a CVSS v3 vector, or `None` when it is not one (or lacks a base metric).
pub fn base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.trim().split('/');
    let version = parts.next()?;
    if version != "CVSS:3.0" && version != "CVSS:3.1" {
        return None;
    }
    let metric = |name: &str| -> Option<String> {
        vector
            .split('/')
            .skip(1)
            .find_map(|p| p.strip_prefix(name)?.strip_prefix(':').map(str::to_owned))
    };
    let scope_changed = match metric("S")?.as_str() {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match metric("AV")?.as_str() {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match metric("AC")?.as_str() {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (metric("PR")?.as_str(), scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match metric("UI")?.as_str() {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |v: Option<String>| match v.as_deref() {
        Some("H") => Some(0.56),
        Some("L") => Some(0.22),
        Some("N") => Some(0.0),
        _ => None,
    };
    let (c, i, a) = (cia(metric("C"))?, cia(metric("I"))?, cia(metric("A"))?);
    let iss: f64 = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * av * ac * pr * ui;
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(round_up(raw))
}

/// CVSS "round up" to one decimal, tolerant of floating-point noise.
fn round_up(x: f64) -> f64 {
    ((x * 10.0) - 1e-6).ceil() / 10.0
}

/// The qualitative rating of a base score (`None`, 0.0, ranks as unimportant).
pub fn rating(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Unimportant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_known_vectors() {
        for (v, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ] {
            let got = base_score(v).unwrap();
            assert!((got - score).abs() < 1e-9, "{v}: {got} vs {score}");
        }
        assert_eq!(base_score("CVSS:4.0/AV:N"), None);
        assert_eq!(base_score("CVSS:3.1/AV:N"), None);
        assert_eq!(rating(9.8), Severity::Critical);
        assert_eq!(rating(7.8), Severity::High);
        assert_eq!(rating(3.1), Severity::Low);
    }
}
