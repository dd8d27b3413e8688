//! OVS stream names (ovs-sessions.md §3.1): any text parses or fails without panicking, and a
//! name that parses prints as a canonical name that parses back to the same value and prints
//! the same again.

use keelson_core::stream::Name;

pub fn check(data: &[u8]) {
    // Names are text; invalid UTF-8 is still tried, through its lossy form.
    let text = String::from_utf8_lossy(data);
    match Name::parse(&text) {
        Ok(name) => {
            let canonical = name.to_string();
            let again = Name::parse(&canonical)
                .unwrap_or_else(|e| panic!("{text:?} → {canonical:?} does not parse: {e}"));
            assert_eq!(again, name, "{text:?} → {canonical:?}");
            assert_eq!(again.to_string(), canonical, "{text:?}");
            assert_eq!(canonical.split_once(':').map(|(k, _)| k), Some(name.kind()));
        }
        Err(e) => {
            // Every error has OVS's text, which quotes the name or its ARGS.
            let message = e.to_string();
            assert!(!message.is_empty());
        }
    }
}
