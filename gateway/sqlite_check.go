package gateway

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrDamagedDatabase: the SQLite file is empty where state should be, or
// fails SQLite's consistency check; the gateway refuses to run on it.
var ErrDamagedDatabase = errors.New("gateway: damaged database")

// checkSQLiteFile refuses a zero-length database file when its folder has
// other state (outputs, a journal, an emulator): that is a truncated
// database, not a first start, and bootstrapping it would issue new keys
// and make every old one fail. A zero-length file alone is a first start.
func checkSQLiteFile(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.Size() > 0 {
		return nil // missing (first start) or not empty (checked after open)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	base := filepath.Base(path)
	var others []string
	for _, e := range entries {
		n := e.Name()
		if n == base || n == base+"-wal" || n == base+"-shm" || n == base+"-journal" {
			continue
		}
		others = append(others, n)
	}
	if len(others) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s is empty (0 bytes) but its folder holds other gateway state (%s): refusing to start it as a new database, "+
		"which would issue new keys and lose every job. Restore the file from a backup, or move the folder away to start over",
		ErrDamagedDatabase, path, strings.Join(others, ", "))
}

// checkSQLiteIntegrity runs PRAGMA quick_check (the b-tree structure and
// every page, without comparing indexes to tables: seconds on large files)
// and refuses a database that fails it.
func checkSQLiteIntegrity(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return sqliteOpenError(path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return sqliteOpenError(path, err)
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return sqliteOpenError(path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s fails SQLite's quick_check (%s): refusing to run on it. Restore it from a backup "+
			"(or try `sqlite3 %s .recover`)", ErrDamagedDatabase, path, strings.Join(problems, "; "), path)
	}
	return nil
}

// sqliteOpenError explains the errors SQLite gives for damaged files.
func sqliteOpenError(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "corrupt") {
		return fmt.Errorf("%w: %s cannot be read as a SQLite database (%v): refusing to run on it. Restore it from a backup", ErrDamagedDatabase, path, err)
	}
	return fmt.Errorf("gateway: open sqlite %s: %w", path, err)
}
