package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// visibleText is the text of an HTML page without tags, scripts and styles.
var tagRE = regexp.MustCompile(`(?s)<style.*?</style>|<script.*?</script>|<[^>]*>`)

// TestNoMarkdownLeftInToolCardsOrHelp renders the submit index and the form
// of every tool of the catalog: no card or field help may show a spec
// heading as a summary or a Markdown mark.
func TestNoMarkdownLeftInToolCardsOrHelp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	c := e.client()
	c.login(e.tenantKey)
	pages := []string{"/submit"}
	for _, op := range catalog.Creates() {
		pages = append(pages, "/submit/"+op.Name)
	}
	bad := []string{"What this API does", "**", "`", "* ", "](", "##"}
	for _, p := range pages {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		text := tagRE.ReplaceAllString(body, "\n")
		for _, b := range bad {
			if strings.Contains(text, b) {
				i := strings.Index(text, b)
				t.Errorf("%s shows %q: …%s…", p, b, text[max(0, i-60):min(len(text), i+60)])
			}
		}
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "- ") {
				t.Errorf("%s: a Markdown bullet left as text: %q", p, l)
			}
		}
	}
}
