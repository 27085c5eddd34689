package gateway

import (
	"strings"
	"testing"
)

func TestDialectPlaceholders(t *testing.T) {
	if got := dialectPostgres.q("a = ? AND b IN (?, ?)"); got != "a = $1 AND b IN ($2, $3)" {
		t.Fatal(got)
	}
	if got := dialectSQLite.q("a = ?"); got != "a = ?" {
		t.Fatal(got)
	}
	if got := redactURL("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Fatal(got)
	}
}
