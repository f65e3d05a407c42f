//! The dates a Release file carries (`Date`, `Valid-Until`, RFC 2822 as apt writes and reads
//! them: `Sat, 09 Nov 2024 10:41:40 UTC`), as seconds since the epoch, and their display.

/// Parses `[Day,] DD Mon YYYY HH:MM:SS ZONE` where ZONE is `UTC`, `GMT`, `Z` or `+HHMM`/`-HHMM`.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = match text.split_once(',') {
        Some((_, rest)) => rest.trim(),
        None => text,
    };
    let mut parts = text.split_ascii_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = month_number(parts.next()?)?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let offset = zone_offset(parts.next().unwrap_or("UTC"))?;
    if parts.next().is_some() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset;
    u64::try_from(seconds).ok()
}

/// `2024-11-09 10:41:40 UTC`.
pub fn format(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(days);
    let rest = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    let index = MONTHS.iter().position(|month| *month == lower)?;
    u32::try_from(index + 1).ok()
}

fn zone_offset(zone: &str) -> Option<i64> {
    if matches!(zone, "UTC" | "GMT" | "Z" | "UT") {
        return Some(0);
    }
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_dates_round_trip() {
        let seconds = parse("Sat, 09 Nov 2024 10:41:40 UTC").unwrap();
        assert_eq!(seconds, 1_731_148_900);
        assert_eq!(format(seconds), "2024-11-09 10:41:40 UTC");
        assert_eq!(parse("Sat, 09 Nov 2024 11:41:40 +0100"), Some(seconds));
        assert_eq!(format(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            parse("Thu, 29 Feb 2024 00:00:00 UTC").map(format).unwrap(),
            "2024-02-29 00:00:00 UTC"
        );
    }

    #[test]
    fn bad_dates_are_none() {
        for bad in [
            "",
            "yesterday",
            "Sat, 09 Nov 2024",
            "09 Foo 2024 10:41:40 UTC",
            "09 Nov 2024 25:00:00 UTC",
            "09 Nov 2024 10:41:40 CEST",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
