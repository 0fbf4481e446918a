//! Syntax check for Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `2e3`), so a typo in a
//! resource annotation is refused at admission instead of by the API server with a vaguer message.

const SUFFIXES: [&str; 14] = [
    "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P",
];

/// True when `s` is a valid, non-negative quantity.
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let (number, suffix_ok) = split_suffix(s);
    suffix_ok && is_decimal(number)
}

fn split_suffix(s: &str) -> (&str, bool) {
    for suffix in SUFFIXES.iter().chain(["E"].iter()) {
        if let Some(number) = s.strip_suffix(suffix) {
            return (number, true);
        }
    }
    // Decimal exponent form: `1e3`, `1E-2`.
    if let Some(pos) = s.find(['e', 'E']) {
        let exponent = s[pos + 1..].strip_prefix(['+', '-']).unwrap_or(&s[pos + 1..]);
        let valid = !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit());
        return (&s[..pos], valid);
    }
    (s, true)
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
}
