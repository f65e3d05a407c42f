use distros::{Error, Family};

#[test]
fn finds_each_id() {
    for (id, family, codename) in [
        ("debian-12", Family::Debian, "bookworm"),
        ("debian-13", Family::Debian, "trixie"),
        ("ubuntu-22.04", Family::Ubuntu, "jammy"),
        ("ubuntu-24.04", Family::Ubuntu, "noble"),
    ] {
        let d = distros::find(id).unwrap();
        assert_eq!((d.id, d.family, d.codename), (id, family, codename));
    }
    assert_eq!(distros::all().len(), 4);
}

#[test]
fn refuses_unknown_ids_with_the_known_list() {
    for bad in ["debian", "Debian-12", "ubuntu-24.04 ", ""] {
        match distros::find(bad) {
            Err(Error::UnknownDistro { id, known }) => {
                assert_eq!(id, bad);
                assert_eq!(known, "debian-12, debian-13, ubuntu-22.04, ubuntu-24.04");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn checksum_file_sits_next_to_the_image() {
    let d = distros::find("ubuntu-22.04").unwrap();
    assert_eq!(
        d.cloud_image.checksums_url,
        "https://cloud-images.ubuntu.com/jammy/current/SHA256SUMS"
    );
    assert_eq!(d.cloud_image.file_name(), "jammy-server-cloudimg-amd64.img");
    let d = distros::find("debian-13").unwrap();
    assert_eq!(
        d.cloud_image.checksums_url,
        "https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS"
    );
}
