//! Whatever bytes arrive, nothing panics and nothing unauthenticated is delivered.

mod common;

use std::sync::OnceLock;

use common::{Devices, delivered_anything, t};
use itb_link::frame::FRAME_BUFFER_CAPACITY;
use itb_link::hello::{self, HelloAnswer};
use itb_link::transport::memory::drain_events;
use itb_link::{FrameDecoder, MAX_FRAME_LEN, Session, VersionSet, encode_frame};
use proptest::prelude::*;

/// Key generation is slow in debug builds: one set of devices for every case.
fn devices() -> &'static Devices {
    static DEVICES: OnceLock<Devices> = OnceLock::new();
    DEVICES.get_or_init(Devices::new)
}

fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..8)
}

proptest! {
    #[test]
    fn frame_decoder_never_panics_and_keeps_its_bounds(
        max_len in 1..=MAX_FRAME_LEN,
        chunks in chunks(),
    ) {
        let mut decoder = FrameDecoder::with_max_len(max_len);
        for chunk in &chunks {
            let mut rest = chunk.as_slice();
            while let Ok(taken) = decoder.push(rest) {
                rest = &rest[taken..];
                prop_assert!(decoder.buffered_len() <= FRAME_BUFFER_CAPACITY);
                loop {
                    match decoder.pop() {
                        Ok(Some(body)) => prop_assert!(!body.is_empty() && body.len() <= max_len),
                        Ok(None) => break,
                        Err(_) => {
                            prop_assert!(decoder.is_failed());
                            break;
                        }
                    }
                }
                if rest.is_empty() || decoder.is_failed() {
                    break;
                }
            }
        }
    }

    #[test]
    fn frames_survive_any_cutting_of_the_stream(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 1..20),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|body| encode_frame(body).expect("small body")).collect();
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut decoded = Vec::new();
        for window in points.windows(2) {
            let taken = decoder.push(&stream[window[0]..window[1]]).expect("valid stream");
            prop_assert_eq!(taken, window[1] - window[0]);
            while let Some(body) = decoder.pop().expect("valid stream") {
                decoded.push(body);
            }
        }
        prop_assert_eq!(decoded, bodies);
        prop_assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_establish_a_responder(
        valid_hello_first in any::<bool>(),
        frame_them in any::<bool>(),
        chunks in chunks(),
    ) {
        let mut pump = Session::responder(devices().pump_config(), t(0));
        if valid_hello_first {
            let offer = encode_frame(&hello::encode_offer(&VersionSet::CURRENT)).expect("small");
            pump.receive(&offer, t(0)).expect("a valid offer");
        }
        for chunk in &chunks {
            let bytes = if frame_them && !chunk.is_empty() { encode_frame(chunk).expect("small") } else { chunk.clone() };
            if pump.receive(&bytes, t(1)).is_err() {
                prop_assert!(pump.is_closed());
            }
        }
        let events = drain_events(&mut pump);
        prop_assert!(!delivered_anything(&events), "{:?}", events);
    }

    #[test]
    fn arbitrary_bytes_never_establish_an_initiator(
        valid_answer_first in any::<bool>(),
        frame_them in any::<bool>(),
        chunks in chunks(),
    ) {
        let devices = devices();
        let mut programmer = Session::initiator(devices.config_for(&devices.clinician), t(0));
        if valid_answer_first {
            let answer = encode_frame(&hello::encode_answer(&HelloAnswer::Accept(itb_link::PROTOCOL_VERSION))).expect("small");
            programmer.receive(&answer, t(0)).expect("a valid answer");
        }
        for chunk in &chunks {
            let bytes = if frame_them && !chunk.is_empty() { encode_frame(chunk).expect("small") } else { chunk.clone() };
            if programmer.receive(&bytes, t(1)).is_err() {
                prop_assert!(programmer.is_closed());
            }
        }
        let events = drain_events(&mut programmer);
        prop_assert!(!delivered_anything(&events), "{:?}", events);
    }
}

proptest! {
    // Each case runs a whole handshake, slow in debug builds.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn forged_frames_into_an_established_session_deliver_nothing(
        frame_them in any::<bool>(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 1..4),
    ) {
        let mut pair = devices().established_clinician();
        for chunk in &chunks {
            let bytes = if frame_them && !chunk.is_empty() { encode_frame(chunk).expect("small") } else { chunk.clone() };
            let _closed = pair.responder.receive(&bytes, t(1));
        }
        let events = drain_events(&mut pair.responder);
        prop_assert!(!delivered_anything(&events), "{:?}", events);
    }
}
