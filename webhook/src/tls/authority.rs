//! The `--self-signed` certificate authority: an ECDSA P-256 CA (shared by the replicas through a Secret,
//! see [`super::ca_secret`]) and each replica's own serving certificate for the webhook Service's DNS
//! names, signed by it, minted in process with rcgen.

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

/// A CA: its certificate and private key (PEM), as kept in the CA Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct CaKeyPair {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA's private key (PEM). Never logged.
    pub key_pem: String,
}

impl std::fmt::Debug for CaKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaKeyPair")
            .field("not_after", &self.not_after())
            .finish()
    }
}

impl CaKeyPair {
    /// When the CA expires; `None` when the certificate cannot be read (treated as expired).
    pub fn not_after(&self) -> Option<SystemTime> {
        super::ca_certs::certificates(&self.cert_pem)
            .first()
            .map(|ca| ca.not_after)
    }

    /// True when the CA should be replaced: unreadable, or less than a third of `validity` left (the
    /// old CA then stays trusted for that third while every replica moves to the new one).
    pub fn rotation_due(&self, validity: Duration, now: SystemTime) -> bool {
        match self.not_after() {
            Some(not_after) => not_after.duration_since(now).unwrap_or_default() < validity / 3,
            None => true,
        }
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
    let ca = mint_ca(validity)?;
    issue_from(&ca, dns_names, validity)
}

fn too_long(validity: Duration) -> TlsError {
    TlsError::Generate(format!(
        "a validity of {} hours is beyond what certificates can express; use at most 87600 hours",
        validity.as_secs() / 3600
    ))
}

/// Mints a fresh CA valid for `validity`.
pub fn mint_ca(validity: Duration) -> Result<CaKeyPair, TlsError> {
    let issued_at = SystemTime::now();
    let not_after = issued_at
        .checked_add(validity)
        .ok_or_else(|| too_long(validity))?;
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
    set_validity(&mut ca_params, issued_at, not_after).ok_or_else(|| too_long(validity))?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::generate)?;
    Ok(CaKeyPair {
        cert_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    })
}

/// Mints a serving certificate for `dns_names` signed by `ca`, valid for `validity` but never beyond
/// the CA itself.
pub fn issue_from(
    ca: &CaKeyPair,
    dns_names: &[String],
    validity: Duration,
) -> Result<IssuedCertificate, TlsError> {
    let unusable = |e: rcgen::Error| TlsError::Generate(format!("the CA in the CA Secret is unusable: {e}"));
    let issued_at = SystemTime::now();
    let ca_not_after = ca
        .not_after()
        .ok_or_else(|| TlsError::Generate("the CA certificate in the CA Secret cannot be read".into()))?;
    let not_after = issued_at
        .checked_add(validity)
        .ok_or_else(|| too_long(validity))?
        .min(ca_not_after);
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(unusable)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(unusable)?;

    let leaf_key = KeyPair::generate().map_err(TlsError::generate)?;
    let mut leaf_params = CertificateParams::new(dns_names.to_vec()).map_err(TlsError::generate)?;
    let common_name = dns_names.last().cloned().unwrap_or_default();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut leaf_params, issued_at, not_after).ok_or_else(|| too_long(validity))?;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(TlsError::generate)?;
    Ok(IssuedCertificate {
        ca_pem: ca.cert_pem.clone(),
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
    fn serving_certificates_of_one_ca_share_it_and_never_outlive_it() {
        let names = service_dns_names("webhook", "muster");
        let ca = mint_ca(Duration::from_secs(3000)).unwrap();
        let a = issue_from(&ca, &names, Duration::from_secs(3000)).unwrap();
        let b = issue_from(&ca, &names, Duration::from_secs(9000)).unwrap();
        assert_eq!(
            (a.ca_pem.as_str(), b.ca_pem.as_str()),
            (ca.cert_pem.as_str(), ca.cert_pem.as_str())
        );
        assert_ne!(a.cert_pem, b.cert_pem);
        let ca_not_after = ca.not_after().unwrap();
        assert!(b.not_after <= ca_not_after + Duration::from_secs(1));
        assert!(!ca.rotation_due(Duration::from_secs(3000), SystemTime::now()));
        assert!(ca.rotation_due(Duration::from_secs(3000), ca_not_after - Duration::from_secs(999)));
        assert!(!format!("{ca:?}").contains("PRIVATE"));
        let broken = CaKeyPair {
            cert_pem: "not a certificate".into(),
            key_pem: ca.key_pem.clone(),
        };
        assert!(broken.rotation_due(Duration::from_secs(3000), SystemTime::now()));
        assert!(issue_from(&broken, &names, Duration::from_secs(60)).is_err());
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
