//! Owns reading the runbooks — a directory, or the set shipped in the binary ([`EMBEDDED`], the
//! repository's `docs/runbooks`, used when `runbook_dir` is empty): Markdown files whose front
//! matter (between two `---` lines) names `id`, `owner`, `last_reviewed` (YYYY-MM-DD) and
//! optionally `review_interval_days`. Simple `key: value` lines; no YAML library. A file that cannot be
//! read or parsed becomes a finding naming the file and the problem, never an error.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

/// Front-matter keys a runbook must have.
pub const REQUIRED_KEYS: [&str; 3] = ["id", "owner", "last_reviewed"];

/// A runbook's parsed front matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runbook {
    /// The file name within the directory.
    pub file: String,
    pub id: String,
    pub owner: String,
    pub last_reviewed: NaiveDate,
    pub review_interval_days: Option<u32>,
    /// The first `# ` heading, if any.
    pub title: Option<String>,
}

/// What scanning a directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunbookScan {
    pub runbooks: Vec<Runbook>,
    /// One message per file (or the directory) that could not be used.
    pub problems: Vec<String>,
}

/// The runbooks shipped in the binary: every runbook of `docs/runbooks` (a test keeps this
/// list equal to the directory), as (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "kafka-ingest-offset-recovery.md",
        include_str!("../../../docs/runbooks/kafka-ingest-offset-recovery.md"),
    ),
    (
        "redis-cache-outage.md",
        include_str!("../../../docs/runbooks/redis-cache-outage.md"),
    ),
];

/// Parses the runbooks shipped in the binary.
pub fn scan_embedded() -> RunbookScan {
    scan_texts(
        EMBEDDED
            .iter()
            .map(|(name, text)| ((*name).to_owned(), Ok((*text).to_owned()))),
    )
}

/// Whether a file name is a runbook (`*.md`, but not `README.md` or `index.md`).
fn is_runbook_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".md") && lower != "readme.md" && lower != "index.md"
}

/// Reads every `*.md` file of `dir` (not recursive, `README.md` and `index.md` skipped) in
/// file-name order.
pub fn scan(dir: &Path) -> RunbookScan {
    let mut scan = RunbookScan::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            scan.problems.push(format!(
                "runbook directory {} cannot be read ({e}): set [incident_response] runbook_dir to the directory holding the runbooks, or leave it empty for the runbooks shipped in the binary",
                dir.display()
            ));
            return scan;
        }
    };
    let mut files: Vec<(String, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            is_runbook_file(&name).then_some((name, p))
        })
        .collect();
    files.sort();
    let texts = files.into_iter().map(|(name, path)| {
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
        (name, text)
    });
    let found = scan_texts(texts);
    scan.runbooks = found.runbooks;
    scan.problems.extend(found.problems);
    scan
}

/// Parses runbook texts given as (file name, text or read error), in the order given.
fn scan_texts(files: impl Iterator<Item = (String, Result<String, String>)>) -> RunbookScan {
    let mut scan = RunbookScan::default();
    for (name, text) in files {
        match text {
            Ok(text) => match parse(&name, &text) {
                Ok(runbook) => {
                    if let Some(first) = scan
                        .runbooks
                        .iter()
                        .find(|r| r.id.eq_ignore_ascii_case(&runbook.id))
                    {
                        scan.problems.push(format!(
                            "runbook {name}: id {:?} is already used by {}; give each runbook its own id",
                            runbook.id, first.file
                        ));
                    } else {
                        scan.runbooks.push(runbook);
                    }
                }
                Err(problem) => scan.problems.push(format!("runbook {name}: {problem}")),
            },
            Err(e) => scan.problems.push(format!(
                "runbook {name} cannot be read ({e}); check its permissions and encoding (UTF-8)"
            )),
        }
    }
    scan
}

/// Parses one runbook's front matter; the error says what is wrong and how to fix it.
pub fn parse(file: &str, text: &str) -> Result<Runbook, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(
            "has no front matter: start the file with a `---` line, then `id:`, `owner:` and `last_reviewed: YYYY-MM-DD` lines, then `---`"
                .into(),
        );
    }
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut closed = false;
    for (i, line) in lines.by_ref().enumerate() {
        let line_no = i + 2;
        let trimmed = line.trim();
        if trimmed == "---" {
            closed = true;
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            return Err(format!(
                "front matter line {line_no} ({trimmed:?}) is not `key: value`"
            ));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = unquote(value.trim());
        if fields.insert(key.clone(), value.to_owned()).is_some() {
            return Err(format!("front matter key `{key}` appears twice"));
        }
    }
    if !closed {
        return Err("front matter is not closed: add a `---` line after its last key".into());
    }
    let missing: Vec<&str> = REQUIRED_KEYS
        .iter()
        .copied()
        .filter(|k| fields.get(*k).is_none_or(|v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "front matter lacks {}: add `{}: …` lines",
            missing.join(", "),
            missing.join(": …`, `")
        ));
    }
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let id = get("id");
    if id.contains(char::is_whitespace) {
        return Err(format!(
            "id {id:?} contains spaces: use a single word like redis-cache-outage"
        ));
    }
    let reviewed = get("last_reviewed");
    let last_reviewed = NaiveDate::parse_from_str(&reviewed, "%Y-%m-%d").map_err(|e| {
        format!("last_reviewed {reviewed:?} is not a date ({e}): write it as YYYY-MM-DD")
    })?;
    let review_interval_days = match fields.get("review_interval_days") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(days) if days > 0 => Some(days),
            _ => {
                return Err(format!(
                    "review_interval_days {v:?} is not a whole number of days >= 1"
                ))
            }
        },
    };
    let title = lines
        .map(str::trim)
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_owned());
    Ok(Runbook {
        file: file.to_owned(),
        id,
        owner: get("owner"),
        last_reviewed,
        review_interval_days,
        title,
    })
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nid: redis-cache-outage\nowner: \"platform-oncall\"\nlast_reviewed: 2026-01-15\nreview_interval_days: 30\n---\n\n# Redis cache outage\n";

    #[test]
    fn a_good_runbook_parses() {
        let r = parse("redis.md", GOOD).expect("parses");
        assert_eq!(r.id, "redis-cache-outage");
        assert_eq!(r.owner, "platform-oncall");
        assert_eq!(
            r.last_reviewed,
            NaiveDate::from_ymd_opt(2026, 1, 15).expect("date")
        );
        assert_eq!(r.review_interval_days, Some(30));
        assert_eq!(r.title.as_deref(), Some("Redis cache outage"));
    }

    #[test]
    fn broken_front_matter_says_what_to_fix() {
        let cases = [
            ("# no front matter\n", "has no front matter"),
            (
                "---\nid: a\nowner: b\nlast_reviewed: 2026-01-01\n",
                "not closed",
            ),
            (
                "---\nid: a\nlast_reviewed: 2026-01-01\n---\n",
                "lacks owner",
            ),
            (
                "---\nid: a\nowner: b\nlast_reviewed: 15/01/2026\n---\n",
                "YYYY-MM-DD",
            ),
            ("---\nid: a\nowner b\n---\n", "line 3"),
            ("---\nid: a\nid: b\n---\n", "appears twice"),
            (
                "---\nid: a b\nowner: c\nlast_reviewed: 2026-01-01\n---\n",
                "contains spaces",
            ),
            (
                "---\nid: a\nowner: c\nlast_reviewed: 2026-01-01\nreview_interval_days: 0\n---\n",
                "review_interval_days",
            ),
        ];
        for (text, expected) in cases {
            let err = parse("x.md", text).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn scan_reports_bad_files_and_duplicate_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.md"), GOOD).expect("write");
        std::fs::write(dir.path().join("b.md"), GOOD).expect("write");
        std::fs::write(dir.path().join("c.md"), "no front matter").expect("write");
        std::fs::write(dir.path().join("README.md"), "index").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let scan = scan(dir.path());
        assert_eq!(scan.runbooks.len(), 1);
        assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
        assert!(scan.problems[0].contains("b.md") && scan.problems[0].contains("already used"));
        assert!(scan.problems[1].starts_with("runbook c.md: has no front matter"));
        let missing = super::scan(&dir.path().join("nope"));
        assert!(missing.problems[0].contains("runbook_dir"));
    }

    /// The binary ships exactly the runbooks of `docs/runbooks`, byte for byte, and they parse.
    #[test]
    fn the_embedded_runbooks_are_the_repository_s() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbooks");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("docs/runbooks")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| is_runbook_file(name))
            .map(|name| {
                let text = std::fs::read_to_string(dir.join(&name)).expect("read");
                (name, text)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        assert_eq!(
            embedded, on_disk,
            "add the new runbook to runbooks::EMBEDDED"
        );
        let scan = scan_embedded();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.runbooks.len(), EMBEDDED.len());
        assert_eq!(scan, super::scan(&dir));
    }
}
