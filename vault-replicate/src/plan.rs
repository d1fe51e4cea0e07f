//! The planner: a pure function from a source snapshot, a target snapshot and
//! a policy to the list of actions that makes the target match the source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    DeletionPolicy, Granularity, Naming, SourceEntry, SourceSnapshot, TargetEntry, TargetSnapshot,
};

/// What to do for one Vault secret (or one group of target entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write a target that does not exist yet.
    Create,
    /// Write a new value (and tags) to existing targets.
    Update,
    /// Delete targets whose Vault secret is gone (policy `schedule` or `force`).
    Delete,
    /// Tag targets whose Vault secret is gone `vault-state=orphaned` (policy `none`).
    Orphan,
    /// Nothing to do.
    Unchanged,
}

impl Action {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Orphan => "orphan",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// What to do.
    pub action: Action,
    /// The Vault mount.
    pub mount: String,
    /// The Vault path (relative to the mount).
    pub path: String,
    /// The Vault version to write (create/update/unchanged).
    pub version: Option<u64>,
    /// What identifies that version (create/update/unchanged; see
    /// [`crate::TAG_VERSION_ID`]).
    #[serde(default)]
    pub version_id: Option<String>,
    /// The existing target entries this action works on: for create/update
    /// those with the expected name(s) (updated, restored or reused), for
    /// delete/orphan the ones to retire.
    pub entries: Vec<TargetEntry>,
    /// Why.
    pub reason: String,
}

/// The actions of one run, sorted by mount and path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Every item, including unchanged ones.
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// How many items have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }

    /// The items that change something.
    pub fn changes(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.action != Action::Unchanged)
    }
}

/// What the planner needs besides the two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPolicy {
    /// How target names are made.
    pub naming: Naming,
    /// What happens to targets whose Vault secret is gone.
    pub deletion: DeletionPolicy,
}

fn matches_name(naming: &Naming, e: &TargetEntry, mount: &str, path: &str) -> bool {
    match naming.granularity() {
        Granularity::Secret => e.key.is_none() && e.name == naming.name(mount, path, None),
        Granularity::Key => e
            .key
            .as_deref()
            .is_some_and(|k| e.name == naming.name(mount, path, Some(k))),
    }
}

/// Plans one run. Pure: no I/O, the same input gives the same plan.
///
/// - A Vault secret with no target gets `create`; one whose targets carry
///   another `vault-version`, lack keys (key granularity), are scheduled for
///   deletion or tagged orphaned gets `update`; otherwise `unchanged`.
/// - Targets whose Vault secret is gone (inside the source's scopes only)
///   or whose name the template no longer produces get `delete` (policy
///   `schedule`/`force`) or `orphan` (policy `none`, once).
/// - Targets outside the source's scopes are never touched.
pub fn plan(source: &SourceSnapshot, target: &TargetSnapshot, policy: &PlanPolicy) -> Plan {
    let naming = &policy.naming;
    let mut groups: BTreeMap<(&str, &str), Vec<&TargetEntry>> = BTreeMap::new();
    for e in &target.entries {
        groups
            .entry((e.mount.as_str(), e.path.as_str()))
            .or_default()
            .push(e);
    }
    let mut sources: Vec<&SourceEntry> = source.entries.iter().collect();
    sources.sort();
    sources.dedup_by(|a, b| a.mount == b.mount && a.path == b.path);

    let mut items = Vec::new();
    for s in sources {
        let existing = groups
            .remove(&(s.mount.as_str(), s.path.as_str()))
            .unwrap_or_default();
        let (current, stale): (Vec<&TargetEntry>, Vec<&TargetEntry>) = existing
            .into_iter()
            .partition(|e| matches_name(naming, e, &s.mount, &s.path));
        items.push(plan_present(s, &current, naming.granularity()));
        if let Some(item) = retire(
            &s.mount,
            &s.path,
            &stale,
            policy.deletion,
            "the name template no longer produces this name",
        ) {
            items.push(item);
        }
    }
    for ((mount, path), entries) in groups {
        if !source.scopes.iter().any(|sc| sc.contains(mount, path)) {
            continue;
        }
        if let Some(item) = retire(mount, path, &entries, policy.deletion, "gone from vault") {
            items.push(item);
        }
    }
    items.sort_by(|a, b| (&a.mount, &a.path, a.action).cmp(&(&b.mount, &b.path, b.action)));
    Plan { items }
}

fn plan_present(s: &SourceEntry, current: &[&TargetEntry], granularity: Granularity) -> PlanItem {
    let item = |action, reason: String| PlanItem {
        action,
        mount: s.mount.clone(),
        path: s.path.clone(),
        version: Some(s.version),
        version_id: Some(s.version_id.clone()),
        entries: current.iter().map(|e| (*e).clone()).collect(),
        reason,
    };
    let live: Vec<&TargetEntry> = match granularity {
        Granularity::Secret => current.to_vec(),
        Granularity::Key => current.iter().copied().filter(|e| !e.orphaned).collect(),
    };
    if live.is_empty() {
        return if current.is_empty() {
            item(Action::Create, "not in the target".into())
        } else {
            item(
                Action::Update,
                "only orphaned or deleted entries in the target".into(),
            )
        };
    }
    if live.iter().any(|e| e.pending_deletion) {
        return item(
            Action::Update,
            "scheduled for deletion in the target: restore".into(),
        );
    }
    if live.iter().any(|e| e.orphaned) {
        return item(Action::Update, "tagged orphaned in the target".into());
    }
    if let Some(e) = live.iter().find(|e| e.version != s.version) {
        return item(
            Action::Update,
            format!(
                "vault has version {}, the target has {}",
                s.version, e.version
            ),
        );
    }
    if let Some(e) = live
        .iter()
        .find(|e| e.version_id.as_deref() != Some(s.version_id.as_str()))
    {
        return item(
            Action::Update,
            match &e.version_id {
                None => "the target has no vault-version-id tag (written by an older release): \
                         written again once"
                    .to_owned(),
                Some(_) if s.version == 0 => "the value changed in vault (kv v1)".to_owned(),
                Some(old) => format!(
                    "vault's version {} was created at {}, the target holds the one created at {old} \
                     (the secret was deleted and written again)",
                    s.version, s.version_id
                ),
            },
        );
    }
    if granularity == Granularity::Key {
        let expected = live[0].key_count;
        if live.len() as u64 != expected || live.iter().any(|e| e.key_count != expected) {
            return item(
                Action::Update,
                format!("the target has {} of {} keys", live.len(), expected),
            );
        }
    }
    item(
        Action::Unchanged,
        format!("in sync at version {}", s.version),
    )
}

fn retire(
    mount: &str,
    path: &str,
    entries: &[&TargetEntry],
    deletion: DeletionPolicy,
    why: &str,
) -> Option<PlanItem> {
    if entries.is_empty() {
        return None;
    }
    let pick = |f: &dyn Fn(&TargetEntry) -> bool| -> Vec<TargetEntry> {
        entries
            .iter()
            .filter(|e| f(e))
            .map(|e| (*e).clone())
            .collect()
    };
    let (action, todo, reason) = match deletion {
        DeletionPolicy::None => (
            Action::Orphan,
            pick(&|e| !e.orphaned && !e.pending_deletion),
            format!("{why}; deletion policy none: tag orphaned"),
        ),
        DeletionPolicy::Schedule {
            recovery_window_days,
        } => (
            Action::Delete,
            pick(&|e| !e.pending_deletion),
            format!("{why}; schedule deletion in {recovery_window_days} days"),
        ),
        DeletionPolicy::Force => (
            Action::Delete,
            pick(&|_| true),
            format!("{why}; delete without recovery"),
        ),
    };
    let (action, entries, reason) = if todo.is_empty() {
        (
            Action::Unchanged,
            Vec::new(),
            format!(
                "{why}; already {}",
                match deletion {
                    DeletionPolicy::None => "orphaned",
                    _ => "scheduled for deletion",
                }
            ),
        )
    } else {
        (action, todo, reason)
    };
    Some(PlanItem {
        action,
        mount: mount.to_owned(),
        path: path.to_owned(),
        version: None,
        version_id: None,
        entries,
        reason,
    })
}

/// Name prefixes that together cover every name of `names`, each covering at
/// most `max` of them (where a longer prefix can split a group): the
/// partitions of a concurrent, name-filtered listing. A name is covered by
/// the prefixes it starts with (ListSecrets' `name` filter is a
/// case-sensitive prefix match); prefixes may overlap (a name that is a
/// prefix of others), which only lists some entries twice.
pub fn name_partitions(names: &[String], max: usize) -> Vec<String> {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    split(&sorted, 0, max.max(1), &mut out);
    out
}

fn split(names: &[&str], depth: usize, max: usize, out: &mut Vec<String>) {
    let Some(first) = names.first() else {
        return;
    };
    if names.len() <= max {
        out.push(first[..common_prefix_len(names, depth)].to_owned());
        return;
    }
    // Names ending at `depth` (the group's own prefix): one partition each.
    let mut rest = names;
    while let Some((n, tail)) = rest.split_first() {
        if n.len() > depth {
            break;
        }
        out.push((*n).to_owned());
        rest = tail;
    }
    // Group the others by their byte at `depth` (sorted: groups are runs).
    while let Some(n) = rest.first() {
        let b = n.as_bytes()[depth];
        let end = rest
            .iter()
            .position(|m| m.as_bytes()[depth] != b)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        split(group, depth + 1, max, out);
        rest = tail;
    }
}

/// The length of the longest common prefix of `names` (all sharing the first
/// `known` bytes), cut back to a character boundary.
fn common_prefix_len(names: &[&str], known: usize) -> usize {
    let (Some(first), Some(last)) = (names.first(), names.last()) else {
        return known;
    };
    // Sorted: the first and the last share what all share.
    let mut n = first
        .bytes()
        .zip(last.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !first.is_char_boundary(n) {
        n -= 1;
    }
    debug_assert!(n >= known);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceScope;

    fn naming(g: Granularity) -> Naming {
        Naming::new(None, "vault", g, false).unwrap()
    }

    fn policy(deletion: DeletionPolicy) -> PlanPolicy {
        PlanPolicy {
            naming: naming(Granularity::Secret),
            deletion,
        }
    }

    fn src(entries: &[(&str, u64)]) -> SourceSnapshot {
        SourceSnapshot {
            scopes: vec![SourceScope::new("secret", "")],
            entries: entries
                .iter()
                .map(|(p, v)| SourceEntry {
                    mount: "secret".into(),
                    path: (*p).into(),
                    version: *v,
                    version_id: format!("t{v}"),
                })
                .collect(),
            skipped_deleted: 0,
        }
    }

    fn entry(path: &str, version: u64) -> TargetEntry {
        TargetEntry {
            name: format!("vault/{path}"),
            id: format!("arn:{path}"),
            mount: "secret".into(),
            path: path.into(),
            key: None,
            version,
            version_id: Some(format!("t{version}")),
            key_count: 1,
            orphaned: false,
            pending_deletion: false,
        }
    }

    fn key_entry(path: &str, key: &str, version: u64, count: u64) -> TargetEntry {
        TargetEntry {
            name: format!("vault/{path}/{key}"),
            key: Some(key.into()),
            key_count: count,
            ..entry(path, version)
        }
    }

    fn tgt(entries: Vec<TargetEntry>) -> TargetSnapshot {
        TargetSnapshot { entries }
    }

    fn actions(p: &Plan) -> Vec<(String, Action)> {
        p.items.iter().map(|i| (i.path.clone(), i.action)).collect()
    }

    #[test]
    fn create_update_unchanged() {
        let p = plan(
            &src(&[("a", 1), ("b/c", 3), ("d", 2)]),
            &tgt(vec![entry("b/c", 2), entry("d", 2)]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(
            actions(&p),
            vec![
                ("a".into(), Action::Create),
                ("b/c".into(), Action::Update),
                ("d".into(), Action::Unchanged)
            ]
        );
        assert_eq!(p.items[1].version, Some(3));
        assert_eq!(p.items[1].entries, vec![entry("b/c", 2)]);
        assert!(
            p.items[1].reason.contains("version 3"),
            "{}",
            p.items[1].reason
        );
        assert_eq!(p.changes().count(), 2);
        assert_eq!(p.count(Action::Unchanged), 1);
    }

    #[test]
    fn empty_inputs_give_an_empty_plan() {
        let p = plan(&src(&[]), &tgt(vec![]), &policy(DeletionPolicy::Force));
        assert!(p.items.is_empty());
    }

    #[test]
    fn gone_from_vault_under_each_policy() {
        let t = tgt(vec![entry("gone", 4)]);
        let p = plan(&src(&[]), &t, &policy(DeletionPolicy::None));
        assert_eq!(actions(&p), vec![("gone".into(), Action::Orphan)]);
        let p = plan(&src(&[]), &t, &policy(DeletionPolicy::schedule(7).unwrap()));
        assert_eq!(actions(&p), vec![("gone".into(), Action::Delete)]);
        assert!(p.items[0].reason.contains("7 days"));
        let p = plan(&src(&[]), &t, &policy(DeletionPolicy::Force));
        assert_eq!(actions(&p), vec![("gone".into(), Action::Delete)]);
        assert_eq!(p.items[0].entries, vec![entry("gone", 4)]);
    }

    #[test]
    fn retiring_is_idempotent() {
        let orphaned = TargetEntry {
            orphaned: true,
            ..entry("gone", 4)
        };
        let p = plan(
            &src(&[]),
            &tgt(vec![orphaned]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(actions(&p), vec![("gone".into(), Action::Unchanged)]);
        let pending = TargetEntry {
            pending_deletion: true,
            ..entry("gone", 4)
        };
        let t = tgt(vec![pending]);
        let p = plan(
            &src(&[]),
            &t,
            &policy(DeletionPolicy::schedule(30).unwrap()),
        );
        assert_eq!(actions(&p), vec![("gone".into(), Action::Unchanged)]);
        // force deletes what is only scheduled
        let p = plan(&src(&[]), &t, &policy(DeletionPolicy::Force));
        assert_eq!(actions(&p), vec![("gone".into(), Action::Delete)]);
    }

    #[test]
    fn out_of_scope_targets_are_never_touched() {
        let mut s = src(&[]);
        s.scopes = vec![SourceScope::new("secret", "team-a")];
        let t = tgt(vec![entry("team-b/x", 1), entry("team-a/x", 1)]);
        let p = plan(&s, &t, &policy(DeletionPolicy::Force));
        assert_eq!(actions(&p), vec![("team-a/x".into(), Action::Delete)]);
        let mut other_mount = entry("team-a/y", 1);
        other_mount.mount = "kv".into();
        let p = plan(&s, &tgt(vec![other_mount]), &policy(DeletionPolicy::Force));
        assert!(p.items.is_empty());
    }

    #[test]
    fn pending_deletion_and_orphaned_targets_are_restored() {
        let pending = TargetEntry {
            pending_deletion: true,
            ..entry("a", 1)
        };
        let p = plan(
            &src(&[("a", 1)]),
            &tgt(vec![pending]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(actions(&p), vec![("a".into(), Action::Update)]);
        assert!(p.items[0].reason.contains("restore"));
        let orphaned = TargetEntry {
            orphaned: true,
            ..entry("a", 1)
        };
        let p = plan(
            &src(&[("a", 1)]),
            &tgt(vec![orphaned]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(actions(&p), vec![("a".into(), Action::Update)]);
    }

    #[test]
    fn renamed_targets_are_retired_and_recreated() {
        let mut old = entry("a", 1);
        old.name = "old-prefix/a".into();
        let p = plan(
            &src(&[("a", 1)]),
            &tgt(vec![old.clone()]),
            &policy(DeletionPolicy::schedule(10).unwrap()),
        );
        assert_eq!(
            actions(&p),
            vec![("a".into(), Action::Create), ("a".into(), Action::Delete)]
        );
        assert_eq!(p.items[1].entries, vec![old]);
    }

    #[test]
    fn key_granularity_checks_every_key_and_the_count() {
        let pol = PlanPolicy {
            naming: naming(Granularity::Key),
            deletion: DeletionPolicy::None,
        };
        let s = src(&[("a", 2)]);
        let full = tgt(vec![key_entry("a", "u", 2, 2), key_entry("a", "p", 2, 2)]);
        assert_eq!(
            actions(&plan(&s, &full, &pol)),
            vec![("a".into(), Action::Unchanged)]
        );
        // a crash left one key behind
        let partial = tgt(vec![key_entry("a", "u", 2, 2)]);
        let p = plan(&s, &partial, &pol);
        assert_eq!(actions(&p), vec![("a".into(), Action::Update)]);
        assert!(
            p.items[0].reason.contains("1 of 2"),
            "{}",
            p.items[0].reason
        );
        let mixed = tgt(vec![key_entry("a", "u", 2, 2), key_entry("a", "p", 1, 2)]);
        assert_eq!(
            actions(&plan(&s, &mixed, &pol)),
            vec![("a".into(), Action::Update)]
        );
        // an orphaned key (removed from vault earlier) does not count
        let mut gone = key_entry("a", "old", 1, 3);
        gone.orphaned = true;
        let with_orphan = tgt(vec![
            key_entry("a", "u", 2, 2),
            key_entry("a", "p", 2, 2),
            gone,
        ]);
        let p = plan(&s, &with_orphan, &pol);
        assert_eq!(actions(&p), vec![("a".into(), Action::Unchanged)]);
        // a whole-secret entry does not satisfy key granularity
        let p = plan(&s, &tgt(vec![entry("a", 2)]), &pol);
        assert_eq!(
            actions(&p),
            vec![("a".into(), Action::Create), ("a".into(), Action::Orphan)]
        );
    }

    #[test]
    fn a_recreated_secret_at_the_same_version_number_is_updated() {
        // Deleted completely and written again: version 1 again, another time.
        let mut s = src(&[("a", 1)]);
        s.entries[0].version_id = "2026-12-01T05:00:00.1Z".into();
        let mut old = entry("a", 1);
        old.version_id = Some("2026-11-01T05:00:00.1Z".into());
        let p = plan(&s, &tgt(vec![old]), &policy(DeletionPolicy::None));
        assert_eq!(actions(&p), vec![("a".into(), Action::Update)]);
        assert!(
            p.items[0].reason.contains("deleted and written again"),
            "{}",
            p.items[0].reason
        );
        assert_eq!(
            p.items[0].version_id.as_deref(),
            Some("2026-12-01T05:00:00.1Z")
        );
        // A replica from an older release (no vault-version-id): written once.
        let mut legacy = entry("a", 1);
        legacy.version_id = None;
        let p = plan(
            &src(&[("a", 1)]),
            &tgt(vec![legacy]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(actions(&p), vec![("a".into(), Action::Update)]);
        assert!(
            p.items[0].reason.contains("older release"),
            "{}",
            p.items[0].reason
        );
    }

    #[test]
    fn name_partitions_cover_every_name_with_bounded_groups() {
        let names: Vec<String> = (0..2_000)
            .map(|i| format!("vault/team-{}/app-{}/secret-{i}", i % 10, (i / 10) % 10))
            .chain(["vault/top".to_owned(), "vault/team-3".to_owned()])
            .collect();
        for max in [1, 7, 100, 500, 2_000, 20_000] {
            let parts = name_partitions(&names, max);
            for n in &names {
                assert!(
                    parts.iter().any(|p| n.starts_with(p.as_str())),
                    "{max}: {n}"
                );
            }
            for p in &parts {
                let covered = names.iter().filter(|n| n.starts_with(p.as_str())).count();
                // a prefix that is itself a name may also cover a group below it
                assert!(
                    covered <= max.max(1) || names.contains(p),
                    "{max}: {p} covers {covered}"
                );
            }
            if max == 20_000 {
                assert_eq!(parts, vec!["vault/t".to_owned()]);
            }
            if max == 500 {
                assert!(parts.len() >= 10 && parts.len() <= 40, "{parts:?}");
            }
        }
        assert!(name_partitions(&[], 10).is_empty());
        let one = name_partitions(&["a/b".to_owned()], 10);
        assert_eq!(one, vec!["a/b".to_owned()]);
    }

    #[test]
    fn duplicate_source_entries_plan_once() {
        let p = plan(
            &src(&[("a", 1), ("a", 1)]),
            &tgt(vec![]),
            &policy(DeletionPolicy::None),
        );
        assert_eq!(p.items.len(), 1);
    }
}
