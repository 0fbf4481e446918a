//! The `--self-signed` certificate authority: an ECDSA P-256 CA and a serving certificate for the
//! webhook Service's DNS names, minted in process with rcgen.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::TlsError;

/// Tolerated clock skew between the webhook and the API server.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// One generation of CA and serving certificate.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The CA certificate (PEM): what goes into `caBundle`.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving key (PEM). Never logged.
    pub key_pem: String,
    /// When this generation was minted.
    pub issued_at: SystemTime,
    /// When CA and serving certificate expire.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("issued_at", &self.issued_at)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// The names the API server may use to reach `service` in `namespace`.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Mints a fresh CA and a serving certificate for `dns_names`, both valid for `validity`.
pub fn issue(dns_names: &[String], validity: Duration) -> Result<IssuedCertificate, TlsError> {
    let issued_at = SystemTime::now();
    let too_long = || {
        TlsError::Generate(format!(
            "a validity of {} hours is beyond what certificates can express; use at most 87600 hours",
            validity.as_secs() / 3600
        ))
    };
    let not_after = issued_at.checked_add(validity).ok_or_else(too_long)?;
    let ca_key = KeyPair::generate().map_err(TlsError::generate)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::generate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "muster-exchange webhook CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca_params, issued_at, not_after).ok_or_else(too_long)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::generate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(TlsError::generate)?;
    let mut leaf_params = CertificateParams::new(dns_names.to_vec()).map_err(TlsError::generate)?;
    let common_name = dns_names.last().cloned().unwrap_or_default();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut leaf_params, issued_at, not_after).ok_or_else(too_long)?;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(TlsError::generate)?;
    Ok(IssuedCertificate {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        issued_at,
        not_after,
    })
}

/// rcgen wants `time::OffsetDateTime`; we derive it from the Unix epoch rcgen can build for us, which
/// avoids another direct dependency just to say "now". `None` when a date is beyond what it can hold.
fn set_validity(params: &mut CertificateParams, from: SystemTime, until: SystemTime) -> Option<()> {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since_epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_before = epoch.checked_add(since_epoch(from).saturating_sub(BACKDATE).try_into().ok()?)?;
    params.not_after = epoch.checked_add(since_epoch(until).try_into().ok()?)?;
    Some(())
}

/// True when less than a third of the lifetime is left: time to rotate, leaving the old CA a third of
/// its lifetime of overlap in the bundle while API servers pick up the new one.
pub fn rotation_due(certificate: &IssuedCertificate, now: SystemTime) -> bool {
    let lifetime = certificate
        .not_after
        .duration_since(certificate.issued_at)
        .unwrap_or_default();
    let remaining = certificate.not_after.duration_since(now).unwrap_or_default();
    remaining < lifetime / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_form_of_the_service_name() {
        assert_eq!(
            service_dns_names("webhook", "muster"),
            [
                "webhook",
                "webhook.muster",
                "webhook.muster.svc",
                "webhook.muster.svc.cluster.local"
            ]
        );
    }

    #[test]
    fn an_absurd_validity_is_an_error_not_a_panic() {
        let names = service_dns_names("webhook", "muster");
        let error = issue(&names, Duration::from_secs(u64::MAX)).unwrap_err();
        assert!(error.to_string().contains("use at most 87600 hours"), "{error}");
        let error = issue(&names, Duration::from_secs(1 << 50)).unwrap_err();
        assert!(error.to_string().contains("use at most 87600 hours"), "{error}");
    }

    #[test]
    fn rotation_is_due_in_the_last_third_of_the_lifetime() {
        let names = service_dns_names("webhook", "muster");
        let cert = issue(&names, Duration::from_secs(3000)).unwrap();
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!rotation_due(&cert, cert.issued_at + Duration::from_secs(1999)));
        assert!(rotation_due(&cert, cert.issued_at + Duration::from_secs(2001)));
        assert!(rotation_due(&cert, cert.not_after + Duration::from_secs(1)));
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }
}
