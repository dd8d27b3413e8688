#!/usr/bin/env python3
"""Dump packets built by the DRBD oracle's encoder (shared/oracles/drbd/drbdwire.py) as
`label<TAB>pv<TAB>hex<TAB>field=value;...` lines, the fields named as Wireshark names them and
taken from the encoder's inputs. drbd_tshark.rs decodes every line with keelson's parsers.

Usage: python3 drbdwire_dump.py ORACLE_DIR > drbdwire.tsv
"""
import sys

sys.path.insert(0, sys.argv[1])
import drbdwire as d  # noqa: E402

P = d.P
rows = []


def add(label, pv, cmd, payload, fields, vol=0, hdr=None):
    wire = d.packet(cmd, payload, agreed_pro=pv, vol=vol, hdr=hdr)
    f = {"drbd.command": cmd, "drbd.length": len(payload)}
    if pv is not None and pv >= 100 and hdr is None:
        f["drbd.volume"] = vol
    f.update(fields)
    rows.append((label, "-" if pv is None else str(pv), wire.hex(), f))


def val(v):
    if isinstance(v, (bytes, bytearray)):
        return "x" + v.hex()
    if isinstance(v, list):
        return ",".join(val(x) for x in v)
    return str(v)


add("initial_data", None, P["INITIAL_DATA"], b"", {}, hdr=80)
add("features", None, P["CONNECTION_FEATURES"], d.connection_features(86, 0x1F, 124, 0, 1),
    {"drbd.protocol_min": 86, "drbd.feature_flags": 0x1F, "drbd.protocol_max": 124,
     "drbd.sender_node_id": 0, "drbd.receiver_node_id": 1}, hdr=80)
ch = bytes(range(64))
add("challenge", 122, P["AUTH_CHALLENGE"], ch, {"drbd.auth_nonce": ch}, vol=-1)
resp = d.auth_response(b"s3cret", ch, 0)
add("response", 122, P["AUTH_RESPONSE"], resp, {"drbd.auth_hash": resp}, vol=-1)
add("protocol", 122, P["PROTOCOL"], d.protocol(3, 3, 8, 0, 1, 0, "sha256"),
    {"drbd.protocol": 3, "drbd.after_sb_0p": 3, "drbd.after_sb_1p": 8, "drbd.after_sb_2p": 0,
     "drbd.conn_flags": 1, "drbd.two_primaries": 0, "drbd.integrity_alg": "sha256"}, vol=-1)
add("sync_param95", 122, P["SYNC_PARAM89"], d.sync_param95(250, "sha1", "md5", 20, 10, 100, 102400),
    {"drbd.resync_rate": 250, "drbd.verify_alg": "sha1", "drbd.csums_alg": "md5",
     "drbd.c_plan_ahead": 20, "drbd.c_delay_target": 10, "drbd.c_fill_target": 100,
     "drbd.c_max_rate": 102400}, vol=1)
add("sizes", 122, P["SIZES"], d.sizes(2097152, 0, 1024, 1 << 20, 0, 2, (4096, 512, 0, 4096, 0, 1, 0, 0, 0)),
    {"drbd.d_size": 2097152, "drbd.u_size": 0, "drbd.c_size": 1024, "drbd.max_bio_size": 1 << 20,
     "drbd.dds_flags": 2, "drbd.physical_block_size": 4096, "drbd.logical_block_size": 512,
     "drbd.io_min": 4096, "drbd.discard_enabled": 1}, vol=1)
hist = [0x1111111111111110 + i for i in range(32)]
add("uuids110", 122, P["UUIDS110"], d.uuids110(0xB16B00B5CAFE0000, 7, 0x120, 0, {0: 0xAB, 3: 0xCD}, hist),
    {"drbd.current_uuid": 0xB16B00B5CAFE0000, "drbd.dirty_bits": 7, "drbd.uuid_flags": 0x120,
     "drbd.bitmap_uuids_mask": 0x9, "drbd.bitmap_uuid": [0xAB, 0xCD], "drbd.history_uuid": hist})
st = d.state_word(role=2, peer=1, conn=8, disk=9, pdsk=7, quorum=1)
add("state", 122, P["STATE"], d.u32(st),
    {"drbd.state": st, "drbd.state.role": 2, "drbd.state.peer": 1, "drbd.state.conn": 8,
     "drbd.state.disk": 9, "drbd.state.pdsk": 7})
add("twopc_prepare", 122, P["TWOPC_PREPARE"],
    d.twopc_request_v1(0x1234ABCD, 0, 1, 2, 0, (0x1F0 << 32) | 0x90),
    {"drbd.tid": 0x1234ABCD, "drbd.initiator_node_id": 0, "drbd.target_node_id": 1,
     "drbd.nodes_to_reach": 2, "drbd.state": 0x90}, vol=-1)
add("twopc_yes", 122, P["TWOPC_YES"], d.twopc_reply(0x1234ABCD, 0, 3, 1, 0),
    {"drbd.tid": 0x1234ABCD, "drbd.initiator_node_id": 0, "drbd.reachable_nodes": 3,
     "drbd.primary_nodes": 1, "drbd.weak_nodes": 0}, vol=-1)
payload = bytes((i * 7 + 3) & 0xFF for i in range(1024))
add("data", 122, P["DATA"], d.data(2048, 0xFFFF88801234ABC0, 1, d.DP_RW_SYNC | d.DP_SEND_WRITE_ACK, payload),
    {"drbd.sector": 2048, "drbd.block_id": 0xFFFF88801234ABC0, "drbd.seq_num": 1,
     "drbd.dp_flags": 0x102, "drbd.size": 1024})
add("barrier", 122, P["BARRIER"], d.barrier(7), {"drbd.barrier": 7}, vol=-1)
add("write_ack", 122, P["WRITE_ACK"], d.block_ack(2048, 0xFFFF88801234ABC0, 4096, 1),
    {"drbd.sector": 2048, "drbd.block_id": 0xFFFF88801234ABC0, "drbd.size": 4096, "drbd.seq_num": 1})
add("barrier_ack", 122, P["BARRIER_ACK"], d.barrier_ack(7, 1), {"drbd.barrier": 7, "drbd.set_size": 1}, vol=-1)
add("rs_data_request", 122, P["RS_DATA_REQUEST"], d.block_req(4096, 0xABCDEF0011223344, 4096),
    {"drbd.sector": 4096, "drbd.block_id": 0xABCDEF0011223344, "drbd.size": 4096})
add("out_of_sync", 122, P["OUT_OF_SYNC"], d.block_desc(8192, 65536), {"drbd.sector": 8192, "drbd.size": 65536})
add("compressed_bitmap", 122, P["COMPRESSED_BITMAP"], d.rle_bitmap(False, [100, 16, 400, 1, 1, 2, 70000, 3]),
    {"rle.first_set": 0, "rle.runs": [100, 16, 400, 1, 1, 2, 70000, 3]})
add("compressed_bitmap_set", 122, P["COMPRESSED_BITMAP"], d.rle_bitmap(True, [5, 3]),
    {"rle.first_set": 1, "rle.runs": [5, 3]})
add("current_uuid", 122, P["CURRENT_UUID"], bytes.fromhex("00000000C0FFEE01") + bytes(8),
    {"drbd.uuid": 0xC0FFEE01, "drbd.weak_nodes": 0})
add("ping", 122, P["PING"], b"", {}, vol=-1)
add("uuids", 96, P["UUIDS"], d.uuids(0x0123456789ABCDEF, 0, 0x1122334455667788, 0x99AABBCCDDEEFF00, 42, 2),
    {"drbd.current_uuid": 0x0123456789ABCDEF, "drbd.bitmap_uuid": 0,
     "drbd.history_uuid": [0x1122334455667788, 0x99AABBCCDDEEFF00], "drbd.dirty_bits": 42,
     "drbd.uuid_flags": 2})
big = bytes((i * 13) & 0xFF for i in range(33280))
add("data_h95", 96, P["DATA"], d.data(0, 0x42, 5, d.DP_RW_SYNC, big),
    {"drbd.sector": 0, "drbd.block_id": 0x42, "drbd.seq_num": 5, "drbd.dp_flags": 2, "drbd.size": 33280})
add("recv_ack", 96, P["RECV_ACK"], d.block_ack(0, 0x42, 65536, 5),
    {"drbd.sector": 0, "drbd.block_id": 0x42, "drbd.size": 65536, "drbd.seq_num": 5})
add("state_chg_req", 96, P["STATE_CHG_REQ"], d.req_state(d.state_word(role=3), d.state_word(role=1)),
    {"req.mask": 3, "req.val": 1})
add("state_chg_reply", 96, P["STATE_CHG_REPLY"], d.u32(1), {"drbd.retcode": 1})

for label, pv, hexs, f in rows:
    print("\t".join([label, pv, hexs, ";".join("%s=%s" % (k, val(v)) for k, v in f.items())]))
