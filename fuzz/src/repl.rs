//! DRBD wire (core/src/repl/wire): every header and packet decoder on arbitrary bytes, with
//! parse → emit → parse agreement for whatever parses; and the bitmap codec, both decoding
//! arbitrary compressed payloads and carrying arbitrary bitmaps across a sender/receiver pair.

use keelson_core::repl::wire::auth::{self, HmacAlg};
use keelson_core::repl::wire::bitmap::{encode_runs, BitmapXfer, CompressedRepr, MAX_PACKET};
use keelson_core::repl::wire::{Agreed, Body, Command, Frame, HeaderKind, HeaderRepr};

/// First byte: protocol version (none, 96, 122) and digest size; the rest goes to every decoder.
pub fn check_packet(data: &[u8]) {
    let Some((&knob, bytes)) = data.split_first() else {
        return;
    };
    let pv = [None, Some(96), Some(122), Some(90)][usize::from(knob & 3)];
    let agreed = Agreed {
        pv,
        features: 0x3FF,
        digest_len: usize::from(knob >> 3),
    };

    if let Ok(h) = HeaderRepr::parse(bytes) {
        let mut out = [0u8; 16];
        let n = h.emit(&mut out).expect("a parsed header re-emits");
        assert_eq!(n, h.buffer_len());
        assert_eq!(HeaderRepr::parse(&out[..n]), Ok(h));
        assert_eq!(
            &out[..n],
            &bytes[..n],
            "headers have no slack: re-emitted bytes are identical"
        );
    }

    if let Ok((frame, used)) = Frame::parse(bytes, &agreed) {
        assert!(used <= bytes.len());
        let h = HeaderRepr::parse(bytes).expect("a parsed frame has a header");
        let mut out = vec![0u8; h.kind.size() + frame.body.buffer_len()];
        let n = frame
            .emit_with(h.kind, &mut out)
            .expect("a parsed frame re-emits");
        assert_eq!(n, out.len());
        // Not necessarily `used` bytes: bytes after a string's NUL are ignored on parse.
        let (again, n2) = Frame::parse(&out, &agreed).expect("a re-emitted frame parses");
        assert_eq!((again, n2), (frame, n));
    }

    for &command in Command::ALL {
        let Ok(body) = Body::parse(command, bytes, &agreed) else {
            continue;
        };
        if let Body::AuthResponse(r) = body {
            let challenge = [knob; 64];
            let mut own = [0u8; 64];
            let n = auth::response(HmacAlg::Sha256, bytes, &challenge, Some(1), &mut own).unwrap();
            assert!(auth::verify(
                HmacAlg::Sha256,
                bytes,
                &challenge,
                Some(1),
                &own[..n]
            ));
            assert_eq!(
                auth::verify(HmacAlg::Sha256, bytes, &challenge, Some(1), r),
                r == &own[..n]
            );
        }
        assert!(body.fits(command));
        let len = body.buffer_len();
        let mut out = vec![0u8; len];
        assert_eq!(
            body.emit(&mut out),
            Ok(len),
            "{command}: emit writes buffer_len bytes"
        );
        if len > 0 {
            assert!(
                body.emit(&mut out[..len - 1]).is_err(),
                "{command}: a short buffer is refused"
            );
        }
        let again = Body::parse(command, &out, &agreed)
            .unwrap_or_else(|e| panic!("{command}: re-emitted body does not parse: {e}"));
        assert_eq!(again, body, "{command}");
    }
}

/// First byte: header kind, RLE on/off, pad of the bitmap length; the rest is both a compressed
/// payload and a bitmap.
pub fn check_bitmap(data: &[u8]) {
    let Some((&knob, bytes)) = data.split_first() else {
        return;
    };
    let header = if knob & 1 == 0 {
        HeaderKind::H80
    } else {
        HeaderKind::H100
    };
    let use_rle = knob & 2 == 0;

    // Arbitrary bytes as a compressed payload.
    if let Ok(r) = CompressedRepr::parse(bytes) {
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut out), Ok(bytes.len()));
        assert_eq!(out, bytes);
        let mut covered = 0u64;
        let mut runs = Vec::new();
        for run in r.runs() {
            let Ok((set, len)) = run else { break };
            assert!(len >= 1);
            covered = covered.saturating_add(len);
            runs.push((set, len));
        }
        // Whatever decoded re-encodes to a prefix-identical stream.
        if !runs.is_empty() {
            let lens: Vec<u64> = runs.iter().map(|r| r.1).collect();
            let mut enc = vec![0u8; bytes.len() + 16];
            let n = encode_runs(runs[0].0, &lens, &mut enc).expect("runs fit where they came from");
            let back: Vec<(bool, u64)> = CompressedRepr::parse(&enc[..n])
                .unwrap()
                .runs()
                .map(Result::unwrap)
                .collect();
            assert_eq!(back, runs);
        }
        let total = u64::from(u16::from_le_bytes([knob, 0x01]));
        let mut rx = BitmapXfer::new(total, header);
        let mut bm = vec![0u8; rx.bitmap_bytes()];
        match rx.receive(Command::CompressedBitmap, bytes, &mut bm) {
            Ok(done) => {
                assert_eq!(done, rx.bit_offset() >= total);
                assert!(covered <= total);
            }
            Err(_) => assert_eq!(
                rx.bit_offset(),
                0,
                "a failed packet does not move the cursor"
            ),
        }
    }

    // The bytes as a bitmap, sent and received.
    let total = (bytes.len() as u64 * 8).saturating_sub(u64::from(knob >> 5));
    let mut tx = BitmapXfer::new(total, header);
    let mut rx = BitmapXfer::new(total, header);
    let mut got = vec![0u8; rx.bitmap_bytes()];
    let mut out = vec![0u8; MAX_PACKET - header.size()];
    let mut packets = 0;
    while let Some(c) = tx
        .next_packet(bytes, use_rle, &mut out)
        .expect("a full-size buffer always fits")
    {
        assert!(c.len + header.size() <= MAX_PACKET);
        let done = rx
            .receive(c.command, &out[..c.len], &mut got)
            .expect("our packets decode");
        assert_eq!(done, c.last);
        packets += 1;
        assert!(packets <= bytes.len() + 1, "the transfer always progresses");
    }
    assert!(rx.is_complete());
    for i in 0..total {
        let (b, m) = ((i / 8) as usize, 1u8 << (i % 8));
        assert_eq!(
            got[b] & m,
            bytes[b] & m,
            "bit {i} differs after the transfer"
        );
    }
}
