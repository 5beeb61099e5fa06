//! Arbitrary bytes into the frame decoder and into a pump's (responder's) and a programmer's
//! (initiator's) session.
//!
//! Checks:
//! - `FrameDecoder`: never panics, never buffers more than one largest frame, returns only
//!   bodies of 1 to `max_len` bytes, and stays failed after an error.
//! - `Session` (both sides): never panics, a refused input leaves it closed, and it never
//!   reports `Event::Established` or `Event::Payload`: no bytes made without the keys can open a
//!   session or deliver a payload. The pump sends nothing but hello answers (an unknown or
//!   unauthenticated Noise message 1 gets no reply).
//!
//! Input layout: byte 0 = flags (bit 0: start with a valid hello offer/answer; bit 1: frame each
//! chunk; bit 2: fire the timeout at the end), bytes 1-2 = the decoder's `max_len` (u16 BE), then
//! chunks, each one length byte followed by up to that many bytes.
#![no_main]

use std::sync::OnceLock;

use itb_link::frame::FRAME_BUFFER_CAPACITY;
use itb_link::hello::{self, HELLO_MAGIC, HelloAnswer};
use itb_link::{
    Event, FrameDecoder, InitiatorConfig, Instant, KeyPair, ResponderConfig, Role, Session, TrustedPeers, VersionSet,
    encode_frame,
};
use libfuzzer_sys::fuzz_target;

struct Configs {
    responder: ResponderConfig,
    initiator: InitiatorConfig,
}

/// Fixed keys: the fuzzer cannot do X25519, so knowing them does not help it.
fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let key = |byte: u8| KeyPair::from_private([byte; 32]).expect("a valid private key");
        let (pump, clinician, patient) = (key(1), key(2), key(3));
        let mut trusted = TrustedPeers::new();
        trusted.add(clinician.public(), Role::Clinician).expect("room");
        trusted.add(patient.public(), Role::Patient).expect("room");
        Configs {
            responder: ResponderConfig::new(pump.clone(), trusted),
            initiator: InitiatorConfig::new(clinician, pump.public()),
        }
    })
}

fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

fn check_decoder(max_len: usize, data: &[u8]) {
    let mut decoder = FrameDecoder::with_max_len(max_len);
    let max_len = decoder.max_len();
    let mut rest = data;
    while let Ok(taken) = decoder.push(rest) {
        rest = &rest[taken..];
        assert!(decoder.buffered_len() <= FRAME_BUFFER_CAPACITY);
        loop {
            match decoder.pop() {
                Ok(Some(body)) => assert!(!body.is_empty() && body.len() <= max_len),
                Ok(None) => break,
                Err(_) => {
                    assert!(decoder.is_failed());
                    assert!(decoder.push(b"x").is_err() && decoder.pop().is_err());
                    return;
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        // Something was left over only because a whole frame waited; it has been popped.
        assert!(taken > 0);
    }
}

fn drive(mut session: Session, first: Option<Vec<u8>>, chunks: &[&[u8]], framed: bool, timeout: bool) {
    let t = Instant::from_millis;
    let mut inputs: Vec<Vec<u8>> = first.into_iter().collect();
    for chunk in chunks {
        if framed && !chunk.is_empty() {
            inputs.push(encode_frame(chunk).expect("at most 255 bytes"));
        } else {
            inputs.push(chunk.to_vec());
        }
    }
    for (index, bytes) in inputs.iter().enumerate() {
        let at = t(u64::try_from(index).expect("small"));
        if session.receive(bytes, at).is_err() {
            assert!(session.is_closed(), "a refused input must close the session");
        }
    }
    if timeout {
        session.handle_timeout(t(u64::MAX / 2));
        assert!(session.is_closed(), "a session never established must time out");
    }
    while let Some(event) = session.poll_event() {
        assert!(!matches!(event, Event::Established { .. } | Event::Payload(_)), "arbitrary bytes produced {event:?}");
    }
    let responder = matches!(session.side(), itb_link::Side::Responder);
    while let Some(bytes) = session.poll_transmit() {
        if responder {
            // Two length bytes, then a hello answer: the pump says nothing else to a stranger.
            assert!(bytes.get(2..5) == Some(HELLO_MAGIC.as_slice()), "the pump sent {bytes:02x?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (max_len, rest) = match rest {
        [high, low, rest @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), rest),
        _ => (usize::MAX, rest),
    };
    check_decoder(max_len, rest);

    let valid_hello_first = flags & 1 != 0;
    let framed = flags & 2 != 0;
    let timeout = flags & 4 != 0;
    let pieces = chunks(rest);
    let configs = configs();

    let pump = Session::responder(configs.responder.clone(), Instant::ZERO);
    let offer = valid_hello_first.then(|| encode_frame(&hello::encode_offer(&VersionSet::CURRENT)).expect("small"));
    drive(pump, offer, &pieces, framed, timeout);

    let programmer = Session::initiator(configs.initiator.clone(), Instant::ZERO);
    let answer =
        valid_hello_first.then(|| encode_frame(&hello::encode_answer(&HelloAnswer::Accept(itb_link::PROTOCOL_VERSION))).expect("small"));
    drive(programmer, answer, &pieces, framed, timeout);
});
