//! Sizes and rates as progress lines show them.

use std::time::Duration;

const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];

/// Binary units with one decimal: `1023 B`, `1.5 KiB`, `5.0 GiB`.
pub fn human(bytes: u64) -> String {
    let mut unit = 0;
    let mut whole = bytes;
    let mut tenths = 0;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        tenths = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{whole}.{tenths} {}", UNITS[unit])
    }
}

/// `bytes` over `elapsed` as `12.3 MiB/s`.
pub(super) fn per_second(bytes: u64, elapsed: Duration) -> String {
    let mut rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let mut unit = 0;
    while rate >= 1024.0 && unit + 1 < UNITS.len() {
        rate /= 1024.0;
        unit += 1;
    }
    format!("{rate:.1} {}/s", UNITS[unit])
}

/// GiB with two decimals: `0.06 GiB`.
pub(super) fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_are_shown_in_binary_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
        assert_eq!(per_second(3 << 20, Duration::from_secs(2)), "1.5 MiB/s");
        assert_eq!(per_second(0, Duration::ZERO), "0.0 B/s");
        assert_eq!(gib(64 << 20), "0.06 GiB");
        assert_eq!(gib(3 << 30), "3.00 GiB");
    }
}
