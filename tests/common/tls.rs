//! A certificate authority and certificates made for one test with rcgen:
//! nothing here is a key anyone uses outside the test that made it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A test PKI written under `dir`.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate (what brokers and clients trust).
    pub ca: PathBuf,
    /// The broker's key and certificate chain in one PEM file (`ssl.keystore.location`).
    pub server_keystore: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

/// A client certificate and its key, as files.
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Sluice Test");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

impl Pki {
    /// A CA and a broker certificate for `localhost` and `127.0.0.1`.
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("create pki dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_params = ca_params("Sluice Test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).expect("write CA");
        let pki = Pki { dir: dir.to_path_buf(), ca, server_keystore: dir.join("broker.pem"), ca_params, ca_key };
        pki.write_server_keystore(&pki.server_keystore.clone(), "localhost");
        pki
    }

    /// Writes a new broker key and certificate (same names) to `path`.
    pub fn write_server_keystore(&self, path: &Path, common_name: &str) {
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign server cert");
        std::fs::write(path, format!("{}{}", key.serialize_pem(), cert.pem())).expect("write keystore");
    }

    /// A client certificate with subject `CN=<cn>,OU=eng,O=Sluice Test` signed by this CA;
    /// `expired` makes one whose validity ended in 2001.
    pub fn client(&self, cn: &str, expired: bool) -> ClientCert {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Sluice Test");
        dn.push(DnType::OrganizationalUnitName, "eng");
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign client cert");
        let tag = if expired { format!("{cn}-expired") } else { cn.to_string() };
        let out = ClientCert { cert: self.dir.join(format!("{tag}.crt")), key: self.dir.join(format!("{tag}.key")) };
        std::fs::write(&out.cert, cert.pem()).expect("write client cert");
        std::fs::write(&out.key, key.serialize_pem()).expect("write client key");
        out
    }

    /// A client certificate from a CA the broker does not trust.
    pub fn untrusted_client(&self, cn: &str) -> ClientCert {
        let other = Pki::new(&self.dir.join("other-ca"));
        other.client(cn, false)
    }
}
