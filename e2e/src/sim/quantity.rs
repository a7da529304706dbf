//! Parsing of the values the simulator reads from objects: storage quantities and the delays in
//! the `sim.archivist.dev/*` annotations.

use std::time::Duration;

use thiserror::Error;

/// A value that could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// Not a storage quantity this simulator understands.
    #[error("invalid quantity {0:?} (expected e.g. 1Gi, 500Mi, 1G, 1048576)")]
    Quantity(String),
    /// Not a duration such as `2s`.
    #[error("invalid duration {0:?} (expected e.g. 500ms, 2s, 1m)")]
    Duration(String),
}

/// Bytes in a Kubernetes quantity such as `1Gi`, `100M` or `1048576` (fractions are rounded up).
pub fn quantity_bytes(quantity: &str) -> Result<u64, ParseError> {
    let err = || ParseError::Quantity(quantity.to_owned());
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return Err(err()),
    };
    let value: f64 = number.parse().map_err(|_| err())?;
    let bytes = (value * multiplier as f64).ceil();
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// A quantity for `bytes`: with the largest binary suffix that divides it exactly (`1Gi`).
pub fn bytes_quantity(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (suffix, shift) in SUFFIXES {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A duration such as `500ms`, `2s`, `1.5s`, `1m` or `1h`; a bare number is seconds.
pub fn duration(text: &str) -> Result<Duration, ParseError> {
    let err = || ParseError::Duration(text.to_owned());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| err())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(quantity_bytes("100Mi"), Ok(100 << 20));
        assert_eq!(quantity_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(quantity_bytes("1048576"), Ok(1_048_576));
        assert_eq!(quantity_bytes("1.5Ki"), Ok(1536));
        assert!(quantity_bytes("1Xi").is_err());
        assert!(quantity_bytes("").is_err());
        assert_eq!(bytes_quantity(1 << 30), "1Gi");
        assert_eq!(bytes_quantity(100 << 20), "100Mi");
        assert_eq!(bytes_quantity(1000), "1000");
        assert_eq!(bytes_quantity(0), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(duration("soon").is_err());
        assert!(duration("-1s").is_err());
    }
}
