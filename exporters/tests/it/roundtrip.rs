//! Property tests: random sparse layouts (holes, explicit zero blocks, data at the very end,
//! odd sizes) exported to every format whose size rule holds and read back by the project's
//! own readers (`verify`), whose content digest must equal SHA-256 of the layout.

use exporters::{Format, NoProgress};
use fixtures::layout::{Piece, expected_bytes};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::common::layout_disk;

fn piece_strategy(size: u64) -> impl Strategy<Value = Piece> {
    let kinds = prop_oneof![Just(0u8), Just(1u8), Just(2u8)];
    (0..size, 1usize..200_000, kinds, any::<u64>()).prop_map(move |(offset, len, kind, seed)| {
        let len = usize::try_from((size - offset).min(len as u64)).unwrap_or(1);
        let bytes = match kind {
            0 => fixtures::pattern(seed, len),
            1 => vec![0u8; len],
            _ => fixtures::text_pattern(seed, len),
        };
        Piece { offset, bytes }
    })
}

fn layout_strategy() -> impl Strategy<Value = (u64, Vec<Piece>, bool)> {
    (1u64..=16_384, any::<bool>()).prop_flat_map(|(sectors, end_data)| {
        let size = sectors * 512;
        (
            Just(size),
            prop::collection::vec(piece_strategy(size), 0..6),
            Just(end_data),
        )
    })
}

fn check_layout(
    size: u64,
    mut pieces: Vec<Piece>,
    end_data: bool,
    compress: bool,
    formats: &[Format],
) {
    if end_data {
        pieces.push(Piece {
            offset: size - 512,
            bytes: b"END!".repeat(128),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = layout_disk(dir.path(), size, &pieces);
    let expected: [u8; 32] =
        Sha256::digest(expected_bytes(usize::try_from(size).unwrap(), &pieces)).into();
    let mut options = exporters::ExportOptions::new("p");
    options.formats = formats
        .iter()
        .copied()
        .filter(|f| f.size_rule().is_none_or(|r| r.holds(size)))
        .collect();
    options.compress = compress;
    let out = dir.path().join("out");
    let report = exporters::export(&disk, &out, &options, &NoProgress).unwrap();
    assert_eq!(
        report.manifest.content_sha256,
        hex::encode(expected),
        "export digest"
    );
    let verified = exporters::verify::verify(&out, &NoProgress).unwrap();
    let disks = report.manifest.disks().count();
    assert_eq!(
        verified
            .artifacts
            .iter()
            .filter(|a| a.checks.len() > 1)
            .count(),
        disks
    );
    for a in report.manifest.disks() {
        let (vsize, digest) =
            exporters::verify::read_disk(&out.join(&a.file), &a.container, &mut |_| {}).unwrap();
        assert_eq!(vsize, size, "{}", a.file);
        assert_eq!(digest, expected, "{} content differs", a.file);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn small_layouts_round_trip_through_every_reader((size, pieces, end_data) in layout_strategy(), compress in any::<bool>()) {
        check_layout(size, pieces, end_data, compress, &[Format::Raw, Format::Qcow2, Format::Vhd, Format::Ova, Format::Aws]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn whole_gib_layouts_round_trip_through_gce_too(pieces in prop::collection::vec(piece_strategy(1 << 30), 1..8), end_data in any::<bool>()) {
        check_layout(1 << 30, pieces, end_data, false, &Format::ALL);
    }
}
