package catalog

import (
	"regexp"
	"strings"
)

var (
	mdLink   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	mdBold   = regexp.MustCompile(`\*\*([^*]*)\*\*`)
	mdHeader = regexp.MustCompile(`^(\*\*[^*]+\*\*:?|#{1,6}[ \t].*)$`)
	paraSep  = regexp.MustCompile(`\n[ \t]*\n`)
)

// plainLine strips the markdown of one line: links become their text, bold
// and code marks go, "* " bullets become "- ".
func plainLine(l string) string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(l, "+")
	l = mdLink.ReplaceAllString(l, "$1")
	l = mdBold.ReplaceAllString(l, "$1")
	l = strings.ReplaceAll(l, "`", "")
	l = strings.TrimSpace(l)
	if strings.HasPrefix(l, "* ") {
		l = "- " + l[2:]
	}
	return l
}

// paragraphs returns the description's prose paragraphs as plain lines,
// skipping headings (bold-only lines and "#" lines).
func paragraphs(md string) [][]string {
	var out [][]string
	for _, para := range paraSep.Split(strings.ReplaceAll(md, "\r", ""), -1) {
		para = strings.TrimSpace(para)
		if para == "" || mdHeader.MatchString(para) {
			continue
		}
		var lines []string
		for _, l := range strings.Split(para, "\n") {
			if mdHeader.MatchString(strings.TrimSpace(l)) {
				continue
			}
			if l = plainLine(l); l != "" && l != "." {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			out = append(out, lines)
		}
	}
	return out
}

// PlainText turns a spec description (markdown) into plain text: links
// reduced to their text, no bold or code marks, bold-only headings dropped,
// bullets as "- " lines, paragraphs separated by a blank line.
func PlainText(md string) string {
	var ps []string
	for _, p := range paragraphs(md) {
		ps = append(ps, strings.Join(p, "\n"))
	}
	return strings.Join(ps, "\n\n")
}

// FirstParagraph is the first paragraph of PlainText(md), its lines kept.
func FirstParagraph(md string) string {
	if ps := paragraphs(md); len(ps) > 0 {
		return strings.Join(ps[0], "\n")
	}
	return ""
}

// Summary is the first line of FirstParagraph on one line, without the
// spec's trailing "This value is either" lead-in: a one-line help text.
func Summary(md string) string {
	p, _, _ := strings.Cut(FirstParagraph(md), "\n")
	p = strings.Join(strings.Fields(p), " ")
	return strings.TrimSpace(strings.TrimSuffix(p, "This value is either"))
}
