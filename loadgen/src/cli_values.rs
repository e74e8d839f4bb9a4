//! The values of flags that are more than a number: durations, key
//! distributions and rate steps. Parsing only (main thread, before a run).

use std::time::Duration;

use super::{Keys, RateStep, RateSteps};

/// "30s", "500ms", "2m", "1h", "1.5s", or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit '{other}' (use ms, s, m, h)")),
    };
    if !seconds.is_finite() || !(0.0..=1e7).contains(&seconds) {
        return Err(format!("duration '{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// "AT:RATE,AT:RATE,...": AT a duration after the start (the first 0),
/// strictly increasing; RATE records/s, at least 1.
pub fn parse_rate_steps(text: &str) -> Result<RateSteps, String> {
    let mut steps: Vec<RateStep> = Vec::new();
    for part in text.split(',') {
        let (at, rate) = part
            .split_once(':')
            .ok_or_else(|| format!("rate step '{part}': expected AT:RATE, e.g. 30s:50000"))?;
        let at_ms = parse_duration(at)?.as_millis() as u64;
        let rate: u64 = rate
            .trim()
            .parse()
            .map_err(|_| format!("rate step '{part}': RATE must be a positive integer"))?;
        steps.push(RateStep { at_ms, rate });
    }
    check_rate_steps(&steps)?;
    Ok(RateSteps(steps))
}

/// The first step at 0, times strictly increasing, every rate positive.
pub fn check_rate_steps(steps: &[RateStep]) -> Result<(), String> {
    if steps.first().is_none_or(|s| s.at_ms != 0) {
        return Err("rate steps must start at 0".to_string());
    }
    if steps.windows(2).any(|w| w[1].at_ms <= w[0].at_ms) {
        return Err("rate step times must increase".to_string());
    }
    if steps.iter().any(|s| s.rate == 0) {
        return Err("every rate step needs a rate of at least 1 record/s".to_string());
    }
    Ok(())
}

/// "none" or "uniform:N" with N >= 1.
pub fn parse_keys(text: &str) -> Result<Keys, String> {
    if text == "none" {
        return Ok(Keys::None);
    }
    let count = text
        .strip_prefix("uniform:")
        .ok_or_else(|| format!("keys '{text}': expected none or uniform:N"))?;
    match count.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Keys::Uniform(n)),
        _ => Err(format!("keys '{text}': N must be a positive integer")),
    }
}
