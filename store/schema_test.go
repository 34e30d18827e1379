package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"xenmanager/store/pgtest"
)

// schemaShape is what the two engines' migrations must agree on: the
// tables, their columns (type, NOT NULL, default, primary key), unique
// constraints, named indexes, foreign keys and triggers, each as a line of
// text in a form both engines' catalogues give.
type schemaShape struct {
	columns  map[string][]string // table -> "name TYPE [NOT NULL] [DEFAULT x] [PK]", in order
	uniques  map[string][]string // table -> "UNIQUE (a, b)", sorted
	indexes  map[string][]string // table -> "name (a, b) [UNIQUE] [WHERE]", sorted
	fks      map[string][]string // table -> "a -> t(b) ON DELETE x", sorted
	triggers map[string][]string // table -> trigger names, sorted
}

func newSchemaShape() schemaShape {
	return schemaShape{columns: map[string][]string{}, uniques: map[string][]string{}, indexes: map[string][]string{},
		fks: map[string][]string{}, triggers: map[string][]string{}}
}

// pgOnlyColumns are the columns PostgreSQL's migrations add for what SQLite
// has implicitly: a table's rowid.
var pgOnlyColumns = map[string]bool{"vm_disk_mappings.rowid": true}

// pgOnlyTriggers are PostgreSQL's own triggers, which tell the managers of
// changes to the inventory (generation_postgres.go) and to what show Vm
// reads (vmgeneration.go); SQLite's one manager learns of them through a
// hook.
var pgOnlyTriggers = map[string]bool{"servers.servers_changed": true, "server_pools.server_pools_changed": true,
	"repositories.repositories_changed": true, "users.users_changed": true,
	"anti_affinity_groups.anti_affinity_groups_changed": true, "anti_affinity_members.anti_affinity_members_changed": true,
	"vms.vms_shown_changed": true, "vm_disk_mappings.vm_disk_mappings_shown_changed": true,
	"vm_cdrom_mappings.vm_cdrom_mappings_shown_changed": true, "vnics.vnics_shown_changed": true,
	"object_tags.object_tags_shown_changed": true, "tags.tags_shown_changed": true,
	"virtual_disks.virtual_disks_shown_changed": true, "virtual_cdroms.virtual_cdroms_shown_changed": true}

// The migrations of both engines make the same schema: every table, column
// (its type as SQLite's affinity names it, NOT NULL, default, primary
// key), unique constraint, named index, foreign key and trigger, but for
// what PostgreSQL needs in place of what SQLite does implicitly
// (pgOnlyColumns, pgOnlyTriggers).
func TestSchemasOfBothEnginesAgree(t *testing.T) {
	pg := testDB{engine: PostgreSQL, target: pgtest.Database(t)}
	lite := testDB{engine: SQLite, target: filepath.Join(t.TempDir(), "manager.db")}
	pg.open(t).Close()
	lite.open(t).Close()
	want := sqliteShape(t, lite.raw(t))
	got := postgresShape(t, pg.raw(t))
	if len(want.columns) < 20 {
		t.Fatalf("SQLite's schema has %d tables; the reading of its catalogue is broken", len(want.columns))
	}
	for _, part := range []struct {
		name      string
		want, got map[string][]string
	}{
		{"columns", want.columns, got.columns}, {"unique constraints", want.uniques, got.uniques},
		{"indexes", want.indexes, got.indexes}, {"foreign keys", want.fks, got.fks}, {"triggers", want.triggers, got.triggers},
	} {
		for table := range merged(part.want, part.got) {
			if w, g := part.want[table], part.got[table]; !slices.Equal(w, g) {
				t.Errorf("%s of table %s differ:\n  SQLite:     %q\n  PostgreSQL: %q", part.name, table, w, g)
			}
		}
	}
}

func merged(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// column is one column's line of schemaShape.
func column(name, typ string, notNull bool, def sql.NullString, pk bool) string {
	s := name + " " + typ
	if notNull || pk {
		s += " NOT NULL"
	}
	if def.Valid {
		s += " DEFAULT " + def.String
	}
	if pk {
		s += " PK"
	}
	return s
}

// rows runs query and calls scan for each row.
func rows(t *testing.T, db *sql.DB, scan func(*sql.Rows) error, query string, args ...any) {
	t.Helper()
	r, err := db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	for r.Next() {
		if err := scan(r); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func sqliteShape(t *testing.T, db *sql.DB) schemaShape {
	sh := newSchemaShape()
	var tables []string
	rows(t, db, func(r *sql.Rows) error {
		var n string
		tables = append(tables, n)
		return r.Scan(&tables[len(tables)-1])
	}, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	for _, table := range tables {
		var pk []string
		rows(t, db, func(r *sql.Rows) error {
			var cid, notNull, pkPos int
			var name, typ string
			var def sql.NullString
			if err := r.Scan(&cid, &name, &typ, &notNull, &def, &pkPos); err != nil {
				return err
			}
			typ = strings.ToUpper(typ)
			if typ == "BIGINT" {
				typ = "INTEGER" // the migrations of both engines (0018 on) write BIGINT, a 64-bit INTEGER on SQLite
			}
			sh.columns[table] = append(sh.columns[table], column(name, typ, notNull == 1, def, pkPos > 0))
			if pkPos > 0 {
				pk = append(pk, name)
			}
			return nil
		}, `SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info($1) ORDER BY cid`, table)
		type index struct {
			name            string
			unique, partial bool
			origin          string
		}
		var idx []index
		rows(t, db, func(r *sql.Rows) error {
			var i index
			if err := r.Scan(&i.name, &i.unique, &i.origin, &i.partial); err != nil {
				return err
			}
			idx = append(idx, i)
			return nil
		}, `SELECT name, "unique", origin, partial FROM pragma_index_list($1)`, table)
		for _, i := range idx {
			var cols []string
			rows(t, db, func(r *sql.Rows) error {
				var c string
				cols = append(cols, c)
				return r.Scan(&cols[len(cols)-1])
			}, `SELECT name FROM pragma_index_info($1) ORDER BY seqno`, i.name)
			switch i.origin {
			case "u":
				sh.uniques[table] = append(sh.uniques[table], "UNIQUE ("+strings.Join(cols, ", ")+")")
			case "c":
				sh.indexes[table] = append(sh.indexes[table], indexLine(i.name, cols, i.unique, i.partial))
			}
		}
		rows(t, db, func(r *sql.Rows) error {
			var from, to, ref, onDelete string
			if err := r.Scan(&from, &ref, &to, &onDelete); err != nil {
				return err
			}
			sh.fks[table] = append(sh.fks[table], fmt.Sprintf("%s -> %s(%s) ON DELETE %s", from, ref, to, onDelete))
			return nil
		}, `SELECT "from", "table", "to", on_delete FROM pragma_foreign_key_list($1)`, table)
		sortShape(sh, table)
	}
	rows(t, db, func(r *sql.Rows) error {
		var name, table string
		if err := r.Scan(&name, &table); err != nil {
			return err
		}
		sh.triggers[table] = append(sh.triggers[table], name)
		return nil
	}, `SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
	return sh
}

// pgTypes names PostgreSQL's types as SQLite's migrations write them.
var pgTypes = map[string]string{"bigint": "INTEGER", "text": "TEXT", "bytea": "BLOB"}

// pgCast is the cast PostgreSQL writes after a default's literal.
var pgCast = regexp.MustCompile(`::[a-z ]+$`)

func postgresShape(t *testing.T, db *sql.DB) schemaShape {
	sh := newSchemaShape()
	rows(t, db, func(r *sql.Rows) error {
		var table, name, typ, nullable string
		var def sql.NullString
		var pk bool
		if err := r.Scan(&table, &name, &typ, &nullable, &def, &pk); err != nil {
			return err
		}
		if pgOnlyColumns[table+"."+name] {
			return nil
		}
		if mapped, ok := pgTypes[typ]; ok {
			typ = mapped
		}
		def.String = pgCast.ReplaceAllString(def.String, "")
		sh.columns[table] = append(sh.columns[table], column(name, typ, nullable == "NO", def, pk))
		return nil
	}, `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default,
			EXISTS (SELECT 1 FROM information_schema.table_constraints tc
				JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
				WHERE tc.table_schema = c.table_schema AND tc.table_name = c.table_name AND tc.constraint_type = 'PRIMARY KEY'
				AND k.column_name = c.column_name)
		FROM information_schema.columns c JOIN information_schema.tables tb
			ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
		WHERE c.table_schema = current_schema()
		ORDER BY c.table_name, c.ordinal_position`)
	// Unique constraints and named indexes, with their columns in order.
	rows(t, db, func(r *sql.Rows) error {
		var table, name, cols string
		var unique, partial, constraint bool
		if err := r.Scan(&table, &name, &cols, &unique, &partial, &constraint); err != nil {
			return err
		}
		if constraint {
			sh.uniques[table] = append(sh.uniques[table], "UNIQUE ("+cols+")")
		} else {
			sh.indexes[table] = append(sh.indexes[table], indexLine(name, strings.Split(cols, ", "), unique, partial))
		}
		return nil
	}, `SELECT t.relname, i.relname,
			(SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
				JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum),
			ix.indisunique, ix.indpred IS NOT NULL, COALESCE(c.contype = 'u', false)
		FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
			LEFT JOIN pg_constraint c ON c.conindid = ix.indexrelid AND c.contype IN ('u', 'p')
		WHERE t.relnamespace = current_schema()::regnamespace AND (c.contype IS NULL OR c.contype = 'u')`)
	rows(t, db, func(r *sql.Rows) error {
		var table, from, ref, to, action string
		if err := r.Scan(&table, &from, &ref, &to, &action); err != nil {
			return err
		}
		onDelete := map[string]string{"a": "NO ACTION", "c": "CASCADE", "r": "RESTRICT", "n": "SET NULL", "d": "SET DEFAULT"}[action]
		sh.fks[table] = append(sh.fks[table], fmt.Sprintf("%s -> %s(%s) ON DELETE %s", from, ref, to, onDelete))
		return nil
	}, `SELECT t.relname, a.attname, rt.relname, ra.attname, c.confdeltype
		FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class rt ON rt.oid = c.confrelid
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
			JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
		WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace`)
	rows(t, db, func(r *sql.Rows) error {
		var name, table string
		if err := r.Scan(&name, &table); err != nil {
			return err
		}
		if !pgOnlyTriggers[table+"."+name] {
			sh.triggers[table] = append(sh.triggers[table], name)
		}
		return nil
	}, `SELECT tg.tgname, t.relname FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
		WHERE NOT tg.tgisinternal AND t.relnamespace = current_schema()::regnamespace ORDER BY tg.tgname`)
	for table := range merged(sh.uniques, sh.indexes) {
		sortShape(sh, table)
	}
	for table := range sh.fks {
		sortShape(sh, table)
	}
	return sh
}

func indexLine(name string, cols []string, unique, partial bool) string {
	s := name + " (" + strings.Join(cols, ", ") + ")"
	if unique {
		s += " UNIQUE"
	}
	if partial {
		s += " WHERE"
	}
	return s
}

// sortShape puts the unordered parts of table's shape in order.
func sortShape(sh schemaShape, table string) {
	slices.Sort(sh.uniques[table])
	slices.Sort(sh.indexes[table])
	slices.Sort(sh.fks[table])
}
