//! Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `2e3`): a syntax check, so a typo in a
//! resource annotation is refused at admission instead of by the API server with a vaguer message, and
//! their value, so request ≤ limit can be checked and `0.5` matches the API server's canonical `500m`.

const BINARY_SUFFIXES: [(&str, f64); 6] = [
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ei", 1_152_921_504_606_846_976.0),
];
const DECIMAL_SUFFIXES: [(&str, f64); 9] = [
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// True when `s` is a valid, non-negative quantity.
pub fn is_quantity(s: &str) -> bool {
    quantity_value(s).is_some()
}

/// The value of a valid, non-negative quantity (`"64Mi"` → 67108864.0); `None` when it is not one.
/// An `f64` is exact enough to order requests and limits and to match canonical forms.
pub fn quantity_value(s: &str) -> Option<f64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let (number, multiplier) = split_suffix(s)?;
    if !is_decimal(number) {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * multiplier)
}

fn split_suffix(s: &str) -> Option<(&str, f64)> {
    for (suffix, multiplier) in BINARY_SUFFIXES.iter().chain(DECIMAL_SUFFIXES.iter()) {
        if let Some(number) = s.strip_suffix(suffix) {
            return Some((number, *multiplier));
        }
    }
    // Decimal exponent form: `1e3`, `1E-2`.
    if let Some(pos) = s.find(['e', 'E']) {
        let exponent_text = &s[pos + 1..];
        let digits = exponent_text.strip_prefix(['+', '-']).unwrap_or(exponent_text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let exponent: i32 = exponent_text.parse().ok()?;
        return Some((&s[..pos], 10f64.powi(exponent)));
    }
    Some((s, 1.0))
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    match fraction {
        None => !whole.is_empty() && digits(whole),
        Some(f) => (!whole.is_empty() || !f.is_empty()) && digits(whole) && digits(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_quantities() {
        for q in [
            "100m", "64Mi", "1", "0.5", ".5", "1.5Gi", "2e3", "1E-2", "+3k", "128M",
        ] {
            assert!(is_quantity(q), "{q}");
        }
    }

    #[test]
    fn refuses_typos() {
        for q in ["", "64MB", "abc", "-1", "1..5", "Mi", "1e", "10 m", "1.2.3"] {
            assert!(!is_quantity(q), "{q}");
        }
    }

    #[test]
    fn values_match_across_spellings() {
        assert_eq!(quantity_value("0.5"), quantity_value("500m"));
        assert_eq!(quantity_value("1Gi"), quantity_value("1024Mi"));
        assert_eq!(quantity_value("2e3"), Some(2000.0));
        assert_eq!(quantity_value("16Mi"), Some(16_777_216.0));
        assert!(quantity_value("16Mi") < quantity_value("32Mi"));
        assert_eq!(quantity_value("64MB"), None);
    }
}
