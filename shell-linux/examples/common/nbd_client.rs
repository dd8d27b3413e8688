//! A minimal NBD client for the benchmarks, built from keelson-core's wire `Repr`s: fixed
//! newstyle negotiation with `NBD_OPT_GO`, request headers and simple replies.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use keelson_core::nbd::wire::option::reply;
use keelson_core::nbd::wire::transmission::Command as Cmd;
use keelson_core::nbd::wire::{
    ClientFlagsRepr, GreetingRepr, InfoRequest, OptionReplyRepr, OptionRequestRepr, RequestRepr,
    SimpleReplyRepr,
};

/// Connects and negotiates `NBD_OPT_GO` for `name`.
pub fn connect(sock: &Path, name: &[u8]) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(sock)?;
    let mut g = [0u8; GreetingRepr::LEN];
    s.read_exact(&mut g)?;
    GreetingRepr::parse(&g).map_err(std::io::Error::other)?;
    let mut out = vec![0u8; 4];
    ClientFlagsRepr { flags: 3 }.emit(&mut out).unwrap();
    let mut data = vec![0u8; 6 + name.len()];
    InfoRequest::emit(name, &[], &mut data).unwrap();
    let mut opt = vec![0u8; 16 + data.len()];
    OptionRequestRepr {
        option: 7,
        length: data.len() as u32,
    }
    .emit(&data, &mut opt)
    .unwrap();
    out.extend(opt);
    s.write_all(&out)?;
    loop {
        let mut h = [0u8; OptionReplyRepr::HEADER_LEN];
        s.read_exact(&mut h)?;
        let h = OptionReplyRepr::parse(&h).map_err(std::io::Error::other)?;
        let mut d = vec![0u8; h.length as usize];
        s.read_exact(&mut d)?;
        if h.is_error() {
            return Err(std::io::Error::other(format!(
                "GO refused: {:#x}",
                h.reply_type
            )));
        }
        if h.reply_type == reply::ACK {
            return Ok(s);
        }
    }
}

pub fn header(command: Cmd, cookie: u64, offset: u64, length: u32) -> [u8; 28] {
    let mut h = [0u8; 28];
    RequestRepr {
        flags: 0,
        command,
        cookie,
        offset,
        length,
    }
    .emit(&mut h)
    .unwrap();
    h
}

pub fn expect_reply(s: &mut UnixStream) -> u64 {
    let mut r = [0u8; 16];
    s.read_exact(&mut r).unwrap();
    let r = SimpleReplyRepr::parse(&r).unwrap();
    assert_eq!(r.error, 0, "request {} failed", r.cookie);
    r.cookie
}
