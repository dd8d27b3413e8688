//! The core's fop numbering and names against the installed libglusterfs (GlusterFS 10.3):
//! `gf_fop_string(value)` and `gf_fop_int(name)` called through `dlopen`.
//!
//! Without libglusterfs.so.0 the test prints a note and passes, except under CI (env `CI`
//! set), where the GlusterFS packages are installed and its absence fails.

use std::ffi::{c_char, c_int, CStr, CString};

use keelson_core::xlator::fop::{Fop, MAXVALUE};

type FopString = unsafe extern "C" fn(c_int) -> *const c_char;
type FopInt = unsafe extern "C" fn(*mut c_char) -> c_int;

struct Lib {
    fop_string: FopString,
    fop_int: FopInt,
}

fn load() -> Option<Lib> {
    let name = CString::new("libglusterfs.so.0").unwrap();
    // SAFETY: dlopen with a valid C string; the handle is never closed, so the symbols stay
    // valid for the whole test process.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        if std::env::var_os("CI").is_some() {
            panic!("libglusterfs.so.0 not found, but CI installs libglusterfs0");
        }
        eprintln!("note: libglusterfs.so.0 not found; skipping the fop table check");
        return None;
    }
    let sym = |s: &str| {
        let c = CString::new(s).unwrap();
        // SAFETY: a valid handle and C string.
        let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
        assert!(!p.is_null(), "{s} missing from libglusterfs");
        p
    };
    // SAFETY: both symbols are functions with these C signatures (libglusterfs common-utils.c:
    // `const char *gf_fop_string(glusterfs_fop_t)`, `int gf_fop_int(char *)`).
    unsafe {
        Some(Lib {
            fop_string: std::mem::transmute::<*mut libc::c_void, FopString>(sym("gf_fop_string")),
            fop_int: std::mem::transmute::<*mut libc::c_void, FopInt>(sym("gf_fop_int")),
        })
    }
}

#[test]
fn fop_values_and_names_match_libglusterfs() {
    let Some(lib) = load() else {
        return;
    };
    for v in 0..=MAXVALUE {
        // SAFETY: gf_fop_string returns a pointer to a static string for any value.
        let theirs = unsafe { CStr::from_ptr((lib.fop_string)(c_int::from(v))) };
        let theirs = theirs.to_str().unwrap();
        match Fop::from_value(v) {
            // Upstream calls NULL and MAXVALUE "INVALID".
            Some(Fop::Null) | None => assert_eq!(theirs, "INVALID", "value {v}"),
            Some(f) => assert_eq!(theirs, f.name(), "value {v}"),
        }
    }
    for f in Fop::ALL {
        for spelling in [f.name().to_string(), f.name().to_lowercase()] {
            let mut c = CString::new(spelling.clone())
                .unwrap()
                .into_bytes_with_nul();
            // SAFETY: a NUL-terminated buffer that gf_fop_int only reads.
            let theirs = unsafe { (lib.fop_int)(c.as_mut_ptr().cast()) };
            let ours = Fop::from_name(spelling.as_bytes()).map_or(-1, |f| c_int::from(f.value()));
            assert_eq!(theirs, ours, "{spelling}");
        }
    }
}
