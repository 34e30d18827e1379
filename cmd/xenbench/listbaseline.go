package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"
)

// listBaselineCmd is the argument that makes xenbench figure 3's baseline
// program instead of the harness: run by the baseline sshd's ForceCommand
// as `xenbench list-baseline DB`, it lists the VMs of the SQLite database
// DB in the form $SSH_ORIGINAL_COMMAND names (sparse, json, json2) and
// exits; "empty" (and "true", the login check of startSSHD) exits at
// once, for the session cost. It opens the file
// as the manager's readers do (database/sql, modernc.org/sqlite,
// query_only), reads the names of servers and repositories, then the
// columns of vms the manager's listing reads, and writes them through one
// buffered writer in the layout of the manager's Sparse, Json and Json
// version 2: what a listing costs without the manager.
const listBaselineCmd = "list-baseline"

// listBaseline is the program; it returns the exit status.
func listBaseline(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: xenbench list-baseline DB (the form in SSH_ORIGINAL_COMMAND: sparse, json, json2 or empty)")
		return 2
	}
	mode := os.Getenv("SSH_ORIGINAL_COMMAND")
	switch mode {
	case "empty", "true": // true: the login check of startSSHD
		return 0
	case "sparse", "json", "json2":
	default:
		fmt.Fprintf(os.Stderr, "list-baseline: unknown form %q: use sparse, json, json2 or empty\n", mode)
		return 2
	}
	if err := writeListing(context.Background(), args[0], mode); err != nil {
		fmt.Fprintln(os.Stderr, "list-baseline:", err)
		return 1
	}
	return 0
}

func writeListing(ctx context.Context, path, mode string) error {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	v.Add("_pragma", "query_only(1)")
	u := url.URL{Scheme: "file", Path: path, RawQuery: v.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	// The names of servers and repositories first, as the manager reads
	// its inventory, then the 8 columns of vms the manager's listing
	// query reads, in its order.
	names := map[string]string{}
	for _, table := range []string{"servers", "repositories"} {
		rows, err := db.QueryContext(ctx, `SELECT id, name FROM `+table)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return err
			}
			names[id] = name
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id, name, pool_id, repo_id, COALESCE(server_id, ''), status, memory_mib, cpu_count
		FROM vms ORDER BY name, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	var b []byte
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	switch mode {
	case "json":
		b = append(b, `{"command":"list Vm","status":"Success","time":"`+now+`","data":[`...)
	case "json2":
		b = append(b, `{"jsonVersion":2,"command":"list Vm","status":"Success","time":"`+now+`","data":[`...)
	}
	var id, name, poolID, repoID, serverID, status string
	var memory, cpus int64
	first := true
	for rows.Next() {
		if err := rows.Scan(&id, &name, &poolID, &repoID, &serverID, &status, &memory, &cpus); err != nil {
			return err
		}
		server, repo := names[serverID], names[repoID]
		switch mode {
		case "sparse":
			b = append(b, "id:"...)
			b = append(b, id...)
			b = append(b, "  name:"...)
			b = append(b, name...)
			b = append(b, '\n')
		case "json":
			if !first {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSON(b, id)
			b = append(b, `,"name":`...)
			b = appendJSON(b, name)
			b = append(b, `,"status":`...)
			b = appendJSON(b, status)
			b = append(b, `,"server":`...)
			b = appendJSON(b, server)
			b = append(b, `,"memory":"`...)
			b = strconv.AppendInt(b, memory, 10)
			b = append(b, `","cpus":"`...)
			b = strconv.AppendInt(b, cpus, 10)
			b = append(b, `","repository":`...)
			b = appendJSON(b, repo)
			b = append(b, '}')
		case "json2":
			if !first {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSON(b, id)
			b = append(b, `,"name":`...)
			b = appendJSON(b, name)
			b = append(b, `,"status":`...)
			b = appendJSON(b, status)
			b = append(b, `,"server":`...)
			b = appendRef(b, serverID, server)
			b = append(b, `,"memory":`...)
			b = strconv.AppendInt(b, memory, 10)
			b = append(b, `,"cpuCount":`...)
			b = strconv.AppendInt(b, cpus, 10)
			b = append(b, `,"repository":`...)
			b = appendRef(b, repoID, repo)
			b = append(b, '}')
		}
		first = false
		if len(b) >= 32<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if mode != "sparse" {
		b = append(b, "]}\n"...)
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

// appendRef appends a Json version 2 reference: {"id":..,"name":..}, or
// null without an id.
func appendRef(b []byte, id, name string) []byte {
	if id == "" {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = appendJSON(b, id)
	b = append(b, `,"name":`...)
	b = appendJSON(b, name)
	return append(b, '}')
}

// appendJSON appends s as a JSON string, escaping what JSON requires (the
// manager also escapes C1 controls and U+2028/9, which the bench's names
// do not hold).
func appendJSON(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
