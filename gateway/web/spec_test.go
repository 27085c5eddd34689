package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
)

// The submit forms come from the gateway's catalog in use: a tool only a
// newer spec has gets its card and form once that catalog is swapped in.
func TestSubmitFormForNewerSpecTool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000)
	c := e.client()
	c.login(e.tenantKey)
	form := "/submit/" + catalogtest.ExtraTool
	if resp, _ := c.get(form); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s before the newer catalog: %d", form, resp.StatusCode)
	}
	cat, err := catalog.Load(catalogtest.ExtraSpec(), catalog.WithSource("extra.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.gw.SetCatalog(cat)
	if _, index := c.get("/submit"); !strings.Contains(index, form) {
		t.Fatalf("/submit does not offer %s", catalogtest.ExtraTool)
	}
	resp, body := c.get(form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="style.prompt"`) {
		t.Fatalf("%s: %d, style.prompt field present: %v", form, resp.StatusCode, strings.Contains(body, `name="style.prompt"`))
	}
}
