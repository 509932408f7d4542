package audit

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"wengang/internal/pg"
	"wengang/internal/pgtest"
	"wengang/policy/access"
)

var migrations = fstest.MapFS{"0001_audit.sql": {Data: []byte(DDL)}}

func TestChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, migrations)
	clerk := access.Principal{Kind: access.KindPerson, Subject: "tok1", Name: "张三", Role: "county_clerk", Domain: "371502"}

	// Concurrent appends to one domain never fork the chain.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := pg.WithTx(ctx, db, func(tx pgx.Tx) error {
				_, err := Append(ctx, tx, Entry{Domain: "371502", Actor: clerk, Action: "dataset.import", ObjectType: "dataset", ObjectID: "1", Detail: "units.csv"})
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Another domain has its own chain.
	if err := pg.WithTx(ctx, db, func(tx pgx.Tx) error {
		_, err := Append(ctx, tx, Entry{Domain: "371521", At: time.Date(2022, 4, 28, 9, 0, 0, 123456789, time.UTC), Actor: clerk, Action: "x"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, db, "371502", 0, 0)
	if err != nil || !v.OK || v.Checked != 8 || v.LastSeq != 8 {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	entries, err := List(ctx, db, Filter{Domain: "371502", AfterSeq: 6})
	if err != nil || len(entries) != 2 || entries[0].Seq != 7 || entries[0].Actor.Subject != "张三 (tok1)" {
		t.Fatalf("List = %+v, %v", entries, err)
	}
	if v, _ := Verify(ctx, db, "371521", 0, 0); !v.OK || v.Checked != 1 {
		t.Fatalf("371521: %+v", v)
	}

	// The table refuses changes.
	if _, err := db.Exec(ctx, `UPDATE audit_log SET detail = 'x' WHERE seq = 3`); err == nil {
		t.Fatal("UPDATE of the audit log succeeded")
	}
	if _, err := db.Exec(ctx, `DELETE FROM audit_log WHERE seq = 3`); err == nil {
		t.Fatal("DELETE from the audit log succeeded")
	}
	// Someone with the power to disable the trigger edits an entry: Verify
	// names it.
	if _, err := db.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
		UPDATE audit_log SET detail = 'edited' WHERE domain = '371502' AND seq = 5`); err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(ctx, db, "371502", 0, 0); err != nil || v.OK || v.BadSeq != 5 {
		t.Fatalf("after an edit: %+v, %v", v, err)
	}
	if _, err := db.Exec(ctx, `UPDATE audit_log SET detail = 'units.csv' WHERE domain = '371502' AND seq = 5;
		DELETE FROM audit_log WHERE domain = '371502' AND seq = 4`); err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(ctx, db, "371502", 0, 0); err != nil || v.OK || v.BadSeq != 5 {
		t.Fatalf("after a deletion: %+v, %v", v, err)
	}
}
