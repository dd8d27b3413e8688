//! Control commands in the spirit of drbdsetup (replication.md §7): one table of verbs that
//! both ends use — the client (`keelctl VERB RESOURCE [--flags]`) to parse words into a
//! libdaemon request, the daemon to dispatch it — plus the status model and its renderers.
//!
//! - [`table`]: [`TABLE`], one [`VerbSpec`] per verb (name, request, resource argument, flags,
//!   help, DRBD netlink op), and [`Invocation`]: words ↔ invocation ↔ request.
//! - [`failure`]: [`Failure`], DRBD's return codes and refused state changes with drbdsetup's
//!   texts and exit statuses.
//! - [`status`]: the plain-data [`Status`] of a resource and its config-tree form in replies.
//! - [`render`]: `Status` as drbdsetup-style text (with /proc/drbd's resync progress lines) and
//!   as `drbdsetup status --json`.
//! - [`control`]: [`ReplControl`], what a resource driver implements, the [`NoResources`] stub,
//!   and [`answer`], one request → one reply body.
//!
//! ```
//! use keelson_core::repl::admin::{answer, Invocation, NoResources};
//! use keelson_core::config::{OwnedTree, ParseOptions};
//! use keelson_core::daemon::Request;
//!
//! let inv = Invocation::parse(&["primary", "r0", "--force"]).unwrap();
//! let mut body = Vec::new();
//! inv.write_request(&mut body).unwrap();
//! assert_eq!(body, b"request = \"repl/primary\"\nresource = \"r0\"\nforce = 1\n");
//!
//! let tree = OwnedTree::from_text_owned(&body, ParseOptions::KEEP).unwrap();
//! let mut reply = Vec::new();
//! answer(&mut NoResources, &Request::new(Some(tree.view())), &mut reply).unwrap();
//! assert!(reply.ends_with(b"reason = \"r0: Failure: (158) Unknown resource\"\ndrbd_code = 158\n"));
//! ```

pub mod control;
pub mod failure;
pub mod render;
pub mod status;
pub mod table;

pub use control::{answer, failure_of, write_failure, NoResources, ReplControl, CODE_KEY};
pub use failure::{Failure, RetCode, StateError};
pub use render::{write_json, write_progress, write_text, NO_RESOURCES};
pub use status::{statuses, PeerStatus, Resync, Status, StatusError};
pub use table::{
    valid_resource_name, Flag, Flags, Invocation, ParseError, ResourceArg, Verb, VerbSpec, TABLE,
};
