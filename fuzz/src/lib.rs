//! Invariants of keelson-core's decoders (config tree, libdaemon requests, JSON-RPC), checked by the fuzz targets in
//! `fuzz_targets/` (each target is one call into this crate).
//!
//! - [`text`]: text → tree in both duplicate modes, fixed vs growable storage, error positions,
//!   and write → re-parse round trips.
//! - [`lookup`]: every `Lookup` getter against a small reference model.
//! - [`binary`]: postcard decode → encode → decode, fixed vs growable storage, graft.
//! - [`daemon`]: libdaemon framing and dispatch from arbitrary byte streams.
//! - [`jsonrpc`]: OVS JSON-RPC framing under any chunking, message parse → write → parse.
//! - [`input`]: reading a fuzz input as a sequence of small values.
//! - [`model`]: the reference pieces they share (visible walk, float and key rules).
//! - [`nbd`]: the NBD server session under arbitrary client bytes, completions and buffers.
//! - [`reconnect`]: the OVS reconnect FSM under arbitrary event sequences and clocks.
//! - [`session`]: the JSON-RPC session (FSM, probes, rotation) under an arbitrary shell.
//! - [`stream`]: OVS stream names: no panic, and parse → print → parse round trips.
//! - [`repl`]: DRBD headers, packets and the bitmap codec: parse → emit → parse, transfers.
//! - [`handle`]: storage/posix's gfid text, handle paths and gfid2path names.
//! - [`repl_data`]: the DRBD data path (receiving side, resync, primary acks) under arbitrary
//!   packet sequences.
//! - [`repl_conn`]: the DRBD connection machine alone on arbitrary events, and two machines with
//!   packets mutated in flight.
//! - [`repl_meta`]: DRBD v08 meta data: superblock parse → emit → parse, its life-cycle steps,
//!   and the area geometry with bitmap block writes.
//! - [`repl_node`]: two per-resource DRBD machines under arbitrary commands, writes, crashes,
//!   partitions and mutated traffic.
//! - [`volfile`]: GlusterFS volfiles through parse, graph build, init, events, dump and fini.
//! - [`xlator`]: translator graphs running fop sequences: frames unwind once, none leak.
//! - [`xlator_dht`]: cluster/distribute graphs with ram and fuzzer-answered posix bricks.
//!
//! A violated invariant panics with the inputs involved, so libFuzzer records it as a crash.

pub mod binary;
pub mod daemon;
pub mod handle;
pub mod input;
pub mod jsonrpc;
pub mod lookup;
pub mod model;
pub mod nbd;
pub mod reconnect;
pub mod repl;
pub mod repl_conn;
pub mod repl_data;
pub mod repl_meta;
pub mod repl_node;
pub mod session;
pub mod stream;
pub mod text;
pub mod volfile;
pub mod xlator;
pub mod xlator_dht;
