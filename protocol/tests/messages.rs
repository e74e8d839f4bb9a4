//! Every supported API (protocol::api::SUPPORTED_APIS), request and response, at
//! every version in its range: a message filled with proptest-generated names,
//! ids, arrays and record bytes encodes, decodes back to an equal message, and
//! the decoder consumes exactly the bytes the encoder wrote.

mod support {
    pub mod apis;
    pub mod gen;
}

use std::fmt::Debug;

use bytes::BytesMut;
use kafka_protocol::protocol::{Decodable, Encodable};
use proptest::prelude::*;
use support::gen::{palette, Generate, Palette};
use weir_protocol::api::SUPPORTED_APIS;
use weir_protocol::kafka_protocol;

fn round_trip<M: Generate + Encodable + Decodable + PartialEq + Debug>(
    what: &str,
    v: i16,
    p: &Palette,
) -> Result<(), TestCaseError> {
    let message = M::generate(v, p);
    let mut buf = BytesMut::new();
    message
        .encode(&mut buf, v)
        .map_err(|e| TestCaseError::fail(format!("{what} encode: {e:#}")))?;
    let size = message
        .compute_size(v)
        .map_err(|e| TestCaseError::fail(format!("{what} size: {e:#}")))?;
    prop_assert_eq!(size, buf.len(), "{} compute_size", what);
    let mut bytes = buf.freeze();
    let back = M::decode(&mut bytes, v).map_err(|e| TestCaseError::fail(format!("{what} decode: {e:#}")))?;
    prop_assert_eq!(&back, &message, "{}", what);
    prop_assert!(bytes.is_empty(), "{} left {} bytes", what, bytes.len());
    Ok(())
}

fn round_trip_all(p: &Palette) -> Result<usize, TestCaseError> {
    let mut checked = 0;
    for api in SUPPORTED_APIS {
        for v in api.decodable_min_version()..=api.max_version {
            let what = format!("{:?} v{v}", api.key);
            with_types!(api.key, Req, Resp => {
                round_trip::<Req>(&format!("{what} request"), v, p)?;
                round_trip::<Resp>(&format!("{what} response"), v, p)?;
            });
            checked += 2;
        }
    }
    Ok(checked)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn given_generated_messages_when_encoded_and_decoded_at_every_supported_version_should_round_trip(
        p in palette()
    ) {
        let checked = round_trip_all(&p)?;
        let expected: usize =
            SUPPORTED_APIS.iter().map(|a| 2 * (a.max_version - a.decodable_min_version() + 1) as usize).sum();
        prop_assert_eq!(checked, expected);
    }
}
