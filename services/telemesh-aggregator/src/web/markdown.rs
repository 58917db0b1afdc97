//! Owns turning a snapshot's Markdown into HTML safe to put in the page: raw HTML in the
//! Markdown is shown as text, links keep only http(s), mailto and relative targets, images
//! become links, so nothing a snapshot carries can run script in the reader's browser.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// Whether a link target may be followed from the page.
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // no scheme before the first '/', '?' or '#': a relative link
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

fn neutral(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Renders Markdown (CommonMark + tables + strikethrough) to safe HTML.
pub fn to_safe_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: neutral(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: neutral(dest_url),
            title,
            id,
        }),
        Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_tables_and_emphasis() {
        let html = to_safe_html("# t\n\n| a | b |\n| --- | --- |\n| **x** | y |\n");
        assert!(html.contains("<h1>t</h1>"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<strong>x</strong>"),
            "{html}"
        );
    }

    #[test]
    fn hostile_markdown_cannot_run_script() {
        for (input, forbidden) in [
            ("<script>alert(1)</script>", "<script"),
            ("hi <img src=x onerror=alert(1)>", "<img"),
            ("[x](javascript:alert(1))", "javascript:"),
            ("[x](JaVaScRiPt:alert(1))", "avascript:"),
            ("![x](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
            (
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a href=\"javascript",
            ),
            ("[x](vbscript:msgbox)", "vbscript:"),
            ("[x](\"onmouseover=alert(1))", "\"onmouseover"),
        ] {
            let html = to_safe_html(input);
            assert!(
                !html
                    .to_ascii_lowercase()
                    .contains(&forbidden.to_ascii_lowercase()),
                "{input:?} rendered as {html:?}"
            );
        }
        assert!(to_safe_html("<b>x</b>").contains("&lt;b&gt;x&lt;/b&gt;"));
    }

    #[test]
    fn ordinary_links_survive() {
        let html = to_safe_html("[runbook](https://runbooks.example/x) [rel](/domains/a#b)");
        assert!(
            html.contains("href=\"https://runbooks.example/x\""),
            "{html}"
        );
        assert!(html.contains("href=\"/domains/a#b\""), "{html}");
    }
}
