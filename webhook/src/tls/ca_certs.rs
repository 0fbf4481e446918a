//! The CA certificates of a `caBundle`: split into certificates, each with its expiry, so a restart of
//! `--self-signed` can keep the CAs earlier pods published (an API server may still use them) and drop
//! the expired ones.
//!
//! Only `notAfter` is read (x509-parser). A block that cannot be parsed is left out, as if expired.

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

/// `notAfter` of a DER certificate; `None` when it cannot be parsed or lies before 1970.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let seconds = u64::try_from(certificate.validity().not_after.timestamp()).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
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

    /// A certificate whose `notAfter` is `year`-`month`-`day` 00:00:00 UTC.
    fn certificate_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn both_time_encodings_are_read() {
        // Until 2049 notAfter is a UTCTime (two-digit year), from 2050 on a GeneralizedTime.
        assert_eq!(
            not_after(&certificate_until(2049, 12, 31)),
            UNIX_EPOCH.checked_add(Duration::from_secs(2_524_521_600))
        );
        assert_eq!(
            not_after(&certificate_until(2060, 1, 2)),
            UNIX_EPOCH.checked_add(Duration::from_secs(2_840_227_200))
        );
    }

    #[test]
    fn what_is_not_a_certificate_has_no_expiry() {
        assert_eq!(not_after(b"\x30\x05\x30"), None);
        assert_eq!(not_after(b""), None);
        let mut truncated = certificate_until(2049, 12, 31);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(not_after(&truncated), None);
    }
}
