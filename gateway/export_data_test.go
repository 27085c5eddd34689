package gateway

import (
	"context"
	"fmt"
)

// CountRowsForTest counts the rows of a table of a SQL store.
func CountRowsForTest(s Store, table string) (int, error) {
	ss, ok := s.(*sqlStore)
	if !ok {
		return 0, fmt.Errorf("not a SQL store: %T", s)
	}
	var n int
	err := ss.r.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}
