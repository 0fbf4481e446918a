//! The CA certificates of a `caBundle`: split into certificates, each with its expiry, so a restart of
//! `--self-signed` can keep the CAs earlier pods published (an API server may still use them) and drop
//! the expired ones.
//!
//! Only `notAfter` is read, by a minimal DER walk (certificate → tbsCertificate → validity), which
//! saves a full X.509 parser dependency for one field. Anything unreadable is treated as expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// One CA certificate of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledCa {
    /// DER bytes: the identity used to deduplicate.
    pub der: Vec<u8>,
    /// When it expires.
    pub not_after: SystemTime,
}

impl BundledCa {
    /// The certificate as one PEM block.
    pub fn pem(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

/// The readable certificates of `bundle_pem`, in order; unreadable blocks are left out.
pub fn certificates(bundle_pem: &str) -> Vec<BundledCa> {
    CertificateDer::pem_slice_iter(bundle_pem.as_bytes())
        .filter_map(Result::ok)
        .filter_map(|der| {
            let not_after = not_after(der.as_ref())?;
            Some(BundledCa {
                der: der.as_ref().to_vec(),
                not_after,
            })
        })
        .collect()
}

/// `notAfter` of a DER certificate.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, certificate, _) = read_tlv(der)?;
    let (_, mut tbs, _) = read_tlv(certificate)?;
    // [0] version is optional; then serialNumber, signature, issuer, validity.
    let (tag, _, rest) = read_tlv(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = read_tlv(tbs)?.2;
    }
    let (_, validity, _) = read_tlv(tbs)?;
    let (_, _, after_not_before) = read_tlv(validity)?;
    let (tag, time, _) = read_tlv(after_not_before)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// (tag, content, rest) of the first DER element of `input`.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (bytes, rest) = input.split_at(count);
        input = rest;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if input.len() < length {
        return None;
    }
    let (content, rest) = input.split_at(length);
    Some((tag, content, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn parse_time(tag: u8, text: &str) -> Option<SystemTime> {
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = digits.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, digits.get(2..)?)
        }
        0x18 => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    if rest.len() != 10 {
        return None;
    }
    let days = days_from_civil(year, field(0)?, field(2)?);
    let seconds = days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::authority::issue;

    #[test]
    fn reads_the_expiry_of_minted_certificates_and_round_trips_pem() {
        let names = vec!["webhook.muster.svc".to_string()];
        let first = issue(&names, Duration::from_secs(3600)).unwrap();
        let second = issue(&names, Duration::from_secs(7200)).unwrap();
        let bundle = format!("{}{}garbage\n", first.ca_pem, second.ca_pem);
        let cas = certificates(&bundle);
        assert_eq!(cas.len(), 2);
        let whole_seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(whole_seconds(cas[0].not_after), whole_seconds(first.not_after));
        assert_eq!(whole_seconds(cas[1].not_after), whole_seconds(second.not_after));
        assert_eq!(cas[0].pem().replace('\r', ""), first.ca_pem.replace('\r', ""));
    }

    #[test]
    fn dates_convert_like_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            parse_time(0x17, "491231235959Z"),
            UNIX_EPOCH.checked_add(Duration::from_secs(2_524_607_999))
        );
        assert_eq!(
            parse_time(0x18, "19700101000001Z"),
            UNIX_EPOCH.checked_add(Duration::from_secs(1))
        );
        assert_eq!(parse_time(0x17, "4912312359Z"), None);
        assert_eq!(not_after(b"\x30\x05\x30"), None);
    }
}
