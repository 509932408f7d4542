package pgtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"testing/fstest"
)

var schema = fstest.MapFS{
	"0001_t.sql": {Data: []byte("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")},
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin, err := adminPool(context.Background(), URL(t))
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestNewDB(t *testing.T) {
	ctx := context.Background()
	var names [2]string
	t.Run("two tests get two migrated databases", func(t *testing.T) {
		for i := range names {
			db := NewDB(t, schema)
			if err := db.QueryRow(ctx, "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
				t.Fatalf("migrated table: %d rows, %v", n, err)
			}
			// A change in one is not seen by the other.
			if _, err := db.Exec(ctx, fmt.Sprintf("INSERT INTO t VALUES (%d)", i+2)); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("both got %s", names[0])
		}
	})
	for _, name := range names {
		if databaseExists(t, name) {
			t.Errorf("database %s is still there after its test", name)
		}
	}

	t.Run("nil migrations give an empty database", func(t *testing.T) {
		db := NewDB(t, nil)
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d tables, %v; want none", n, err)
		}
	})
}

// TestTemplateRace starts several test processes at once that all need the
// same new template, as parallel test packages do.
func TestTemplateRace(t *testing.T) {
	if os.Getenv("PGTEST_CHILD_MIGRATION") != "" {
		t.Skip("in a child")
	}
	URL(t)
	// A migration set no process has seen: a new template.
	salt := randomHex(8)
	const children = 4
	var wg sync.WaitGroup
	outs := make([][]byte, children)
	errs := make([]error, children)
	for i := range children {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildNewDB$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD_MIGRATION="+salt)
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i := range children {
		if errs[i] != nil {
			t.Errorf("child %d: %v\n%s", i, errs[i], outs[i])
		}
	}

	sum, err := hashFS(childSchema(salt))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := "wengang_tmpl_" + hex.EncodeToString(sum[:8])
	if !databaseExists(t, tmpl) || databaseExists(t, tmpl+"_build") {
		t.Errorf("want template %s and no %s_build", tmpl, tmpl)
	}
	admin, _ := adminPool(context.Background(), URL(t))
	if _, err := admin.Exec(context.Background(), "DROP DATABASE "+ident(tmpl)); err != nil {
		t.Errorf("drop the test's template: %v", err)
	}
}

func childSchema(salt string) fstest.MapFS {
	return fstest.MapFS{"0001_t.sql": {Data: []byte("-- " + salt + "\nCREATE TABLE t (id int); SELECT pg_sleep(0.3);")}}
}

// TestChildNewDB is TestTemplateRace's child.
func TestChildNewDB(t *testing.T) {
	salt := os.Getenv("PGTEST_CHILD_MIGRATION")
	if salt == "" {
		t.Skip("run by TestTemplateRace")
	}
	db := NewDB(t, childSchema(salt))
	if _, err := db.Exec(context.Background(), "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
}
