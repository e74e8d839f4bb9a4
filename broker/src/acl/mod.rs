//! Authorization: the catalog's ACL bindings compiled into per-resource-type
//! indexes (`Authorizer`, one per shard, rebuilt when a catalog is applied),
//! and `screen*`, which checks each request against them before its handler
//! runs and patches the refusals into its response (Kafka's KafkaApis checks).
//! Rules (Kafka's StandardAuthorizer with `allow.everyone.if.no.acl.found=false`):
//! a connection without a principal (no SASL on its listener) and a super user
//! may do anything; otherwise a matching DENY wins, then a matching ALLOW
//! allows, and no match denies. READ, WRITE, DELETE and ALTER imply DESCRIBE;
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation.
//! A check is hash lookups and a scan of the few bindings for one resource:
//! no allocation.

pub mod screen;
mod screen_admin;
mod screen_groups;
mod screen_share;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;

use crate::metadata::acl::{op, permission, resource, AclBinding, WILDCARD};

/// One binding's principal, host, operation and permission.
#[derive(Debug)]
struct Entry {
    principal: Box<str>,
    /// `None`: every host (`*`); a host that is not an IP address never matches.
    host: Option<Option<IpAddr>>,
    operation: i8,
    allow: bool,
}

/// The bindings of one resource type.
#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<Box<str>, Vec<Entry>>,
    /// LITERAL `*`: every resource of the type.
    wildcard: Vec<Entry>,
    /// Sorted by prefix: the prefixes of a name lie between the first prefix
    /// starting with its first byte and the name itself.
    prefixed: Vec<(Box<str>, Entry)>,
}

impl TypeIndex {
    /// The PREFIXED bindings whose prefix starts `name`: two binary searches
    /// and a scan of the prefixes sharing its first byte.
    fn prefixes_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let first = name.as_bytes().first().copied().unwrap_or(0);
        let end = self.prefixed.partition_point(|(p, _)| &**p <= name);
        let start = self.prefixed[..end].partition_point(|(p, _)| p.as_bytes()[0] < first);
        self.prefixed[start..end]
            .iter()
            .filter(move |(p, _)| name.starts_with(&**p))
            .map(|(_, e)| e)
    }
}

#[derive(Debug, Default)]
pub struct Authorizer {
    super_users: HashSet<Box<str>>,
    /// Indexed by resource type code (TOPIC..=USER).
    types: [TypeIndex; 8],
}

fn implies(granted: i8, wanted: i8) -> bool {
    granted == wanted
        || granted == op::ALL
        || (wanted == op::DESCRIBE && [op::READ, op::WRITE, op::DELETE, op::ALTER].contains(&granted))
        || (wanted == op::DESCRIBE_CONFIGS && granted == op::ALTER_CONFIGS)
}

impl Entry {
    fn applies(&self, principal: &str, host: IpAddr) -> bool {
        (&*self.principal == principal || &*self.principal == "User:*")
            && self.host.is_none_or(|h| h == Some(host))
    }
}

impl Authorizer {
    pub fn new(acls: &[AclBinding], super_users: &[String]) -> Self {
        let mut a = Authorizer {
            super_users: super_users.iter().map(|s| s.trim().into()).collect(),
            ..Default::default()
        };
        for b in acls {
            let Some(index) = a.types.get_mut(b.resource_type as usize) else {
                continue;
            };
            let entry = Entry {
                principal: b.principal.as_str().into(),
                host: (b.host != WILDCARD).then(|| b.host.parse().ok()),
                operation: b.operation,
                allow: b.permission == permission::ALLOW,
            };
            match (b.pattern_type, b.resource_name.as_str()) {
                (crate::metadata::acl::pattern::PREFIXED, name) => index.prefixed.push((name.into(), entry)),
                (_, WILDCARD) => index.wildcard.push(entry),
                (_, name) => index.literal.entry(name.into()).or_default().push(entry),
            }
        }
        for index in &mut a.types {
            index.prefixed.sort_by(|x, y| x.0.cmp(&y.0));
        }
        a
    }

    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.contains(principal)
    }

    /// Whether `principal` at `host` may do `operation` on the resource.
    pub fn authorize(&self, principal: &str, host: IpAddr, operation: i8, rtype: i8, name: &str) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let Some(index) = self.types.get(rtype as usize) else {
            return false;
        };
        let literal = index.literal.get(name).map_or(&[][..], Vec::as_slice);
        let prefixed = index.prefixes_of(name);
        let mut allowed = false;
        for e in literal.iter().chain(&index.wildcard).chain(prefixed) {
            if !e.applies(principal, host) {
                continue;
            }
            if !e.allow && (e.operation == operation || e.operation == op::ALL) {
                return false;
            }
            allowed |= e.allow && implies(e.operation, operation);
        }
        allowed
    }

    /// Kafka's authorizeByResourceType, simplified: some ALLOW binding grants
    /// `operation` on some resource of the type (InitProducerId of an
    /// idempotent producer: WRITE on any topic stands for IDEMPOTENT_WRITE).
    pub fn allows_some(&self, principal: &str, host: IpAddr, operation: i8, rtype: i8) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let Some(index) = self.types.get(rtype as usize) else {
            return false;
        };
        let denied_everywhere = index
            .wildcard
            .iter()
            .any(|e| !e.allow && e.applies(principal, host) && implies(e.operation, operation));
        let entries = index
            .literal
            .values()
            .flatten()
            .chain(&index.wildcard)
            .chain(index.prefixed.iter().map(|(_, e)| e));
        !denied_everywhere
            && entries
                .into_iter()
                .any(|e| e.allow && e.applies(principal, host) && implies(e.operation, operation))
    }
}

/// Who is asking, for the checks of one request.
#[derive(Clone)]
pub struct Access {
    pub authz: Rc<Authorizer>,
    /// `None`: no SASL on this connection's listener, everything is allowed.
    pub principal: Option<Rc<str>>,
    pub peer: std::net::SocketAddr,
}

impl Access {
    /// No checks apply: no principal, or a super user.
    pub fn unrestricted(&self) -> bool {
        self.principal
            .as_deref()
            .is_none_or(|p| self.authz.is_super_user(p))
    }

    pub fn allows(&self, operation: i8, rtype: i8, name: &str) -> bool {
        match self.principal.as_deref() {
            None => true,
            Some(p) => self.authz.authorize(p, self.host(), operation, rtype, name),
        }
    }

    /// The client's address as ACL hosts name it: an IPv4 client on a dual-stack
    /// listener is its IPv4 address.
    pub fn host(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }

    pub fn allows_topic(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TOPIC, name)
    }

    pub fn allows_group(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::GROUP, name)
    }

    pub fn allows_cluster(&self, operation: i8) -> bool {
        self.allows(operation, resource::CLUSTER, crate::metadata::acl::CLUSTER_NAME)
    }

    pub fn allows_txn(&self, operation: i8, id: &str) -> bool {
        self.allows(operation, resource::TRANSACTIONAL_ID, id)
    }

    /// The one log line of a refused request: who, from where, what.
    pub fn log_denied(&self, api: &str, what: &str) {
        tracing::info!(
            peer = %self.peer,
            principal = self.principal.as_deref().unwrap_or("-"),
            api,
            what,
            "authorization denied"
        );
    }
}

#[cfg(test)]
mod rules {
    use super::*;
    use crate::metadata::acl::pattern;

    fn acl(rt: i8, name: &str, pt: i8, who: &str, operation: i8, allow: bool) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: who.into(),
            host: "*".into(),
            operation,
            permission: if allow {
                permission::ALLOW
            } else {
                permission::DENY
            },
        }
    }

    #[test]
    fn given_bindings_when_checked_should_apply_deny_wins_implication_and_default_deny() {
        let t = resource::TOPIC;
        let (lit, pre) = (pattern::LITERAL, pattern::PREFIXED);
        let a = Authorizer::new(
            &[
                acl(t, "orders", lit, "User:alice", op::WRITE, true),
                acl(t, "pay", pre, "User:alice", op::ALL, true),
                acl(t, "payments", lit, "User:alice", op::READ, false),
                acl(t, "*", lit, "User:*", op::DESCRIBE_CONFIGS, true),
                acl(resource::GROUP, "g", lit, "User:bob", op::ALTER_CONFIGS, true),
                acl(t, "or", pre, "User:dave", op::READ, true),
                acl(t, "orders-", pre, "User:dave", op::WRITE, true),
                acl(t, "a", pre, "User:dave", op::DELETE, true),
                acl(t, "zz", pre, "User:dave", op::DELETE, true),
            ],
            &["User:admin".into()],
        );
        let host: IpAddr = "127.0.0.1".parse().unwrap();
        let can = |who: &str, o: i8, rt: i8, n: &str| a.authorize(who, host, o, rt, n);
        assert!(can("User:alice", op::WRITE, t, "orders"));
        assert!(
            can("User:alice", op::DESCRIBE, t, "orders"),
            "WRITE implies DESCRIBE"
        );
        assert!(!can("User:alice", op::READ, t, "orders"));
        assert!(can("User:alice", op::WRITE, t, "payroll"), "prefixed ALL");
        assert!(!can("User:alice", op::READ, t, "payments"), "deny wins");
        assert!(can("User:alice", op::WRITE, t, "payments"));
        assert!(
            can("User:carol", op::DESCRIBE_CONFIGS, t, "x"),
            "wildcard principal and name"
        );
        assert!(!can("User:carol", op::DESCRIBE, t, "x"), "no binding: deny");
        assert!(can("User:bob", op::DESCRIBE_CONFIGS, resource::GROUP, "g"));
        assert!(!can("User:bob", op::DESCRIBE, resource::GROUP, "g"));
        assert!(can("User:admin", op::DELETE, t, "anything"), "super user");
        assert!(can("User:dave", op::READ, t, "orders") && can("User:dave", op::READ, t, "or"));
        assert!(!can("User:dave", op::WRITE, t, "orders") && can("User:dave", op::WRITE, t, "orders-1"));
        assert!(!can("User:dave", op::READ, t, "ox") && !can("User:dave", op::READ, t, "o"));
        assert!(can("User:dave", op::DELETE, t, "abc") && can("User:dave", op::DELETE, t, "zzz"));
        assert!(!can("User:dave", op::DELETE, t, "b") && !can("User:dave", op::DELETE, t, ""));
        assert!(a.allows_some("User:alice", host, op::WRITE, t));
        assert!(!a.allows_some("User:bob", host, op::WRITE, t));
    }

    #[test]
    fn given_a_host_binding_when_checked_should_match_that_address_only() {
        let b = AclBinding {
            host: "10.0.0.1".into(),
            ..acl(
                resource::TOPIC,
                "h",
                pattern::LITERAL,
                "User:alice",
                op::READ,
                true,
            )
        };
        let a = Authorizer::new(&[b], &[]);
        let can = |ip: &str| a.authorize("User:alice", ip.parse().unwrap(), op::READ, resource::TOPIC, "h");
        assert!(can("10.0.0.1"));
        assert!(!can("127.0.0.1"));
        let mapped: std::net::SocketAddr = "[::ffff:10.0.0.1]:9092".parse().unwrap();
        let access = Access {
            authz: Rc::new(a),
            principal: Some("User:alice".into()),
            peer: mapped,
        };
        assert!(
            access.allows_topic(op::READ, "h"),
            "an IPv4-mapped peer is its IPv4 address"
        );
    }

    /// `cargo test --release -p weir-broker --lib acl::rules -- --ignored --nocapture`:
    /// the cost of one check against 1000 literal and 100 prefixed topic bindings.
    #[test]
    #[ignore = "a timing, run by hand in release"]
    fn measure_one_check() {
        let mut acls: Vec<AclBinding> = (0..1000)
            .map(|i| {
                acl(
                    resource::TOPIC,
                    &format!("topic-{i}"),
                    pattern::LITERAL,
                    "User:alice",
                    op::WRITE,
                    true,
                )
            })
            .collect();
        acls.extend((0..100).map(|i| {
            acl(
                resource::TOPIC,
                &format!("p{i}-"),
                pattern::PREFIXED,
                "User:bob",
                op::READ,
                true,
            )
        }));
        let a = Authorizer::new(&acls, &["User:admin".into()]);
        let host: IpAddr = "127.0.0.1".parse().unwrap();
        let names: Vec<String> = (0..1000).map(|i| format!("topic-{i}")).collect();
        let n = 2_000_000;
        let started = std::time::Instant::now();
        let mut allowed = 0usize;
        for i in 0..n {
            allowed +=
                usize::from(a.authorize("User:alice", host, op::WRITE, resource::TOPIC, &names[i % 1000]));
        }
        let ns = started.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(allowed, n);
        println!("one check: {ns:.1} ns (1000 literal + 100 prefixed bindings)");
    }
}
