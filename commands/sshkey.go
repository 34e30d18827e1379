package commands

import (
	"context"
	"strings"

	"xenmanager/backend"
)

// sshKeyType is the SshKey: a public key a user may log in with.
var sshKeyType = &objectType{
	Name: "SshKey",
	List: &Spec{Help: "List SSH keys (yours unless you are an Administrator).", Run: func(ctx context.Context, x *Exec) (*Result, error) {
		l, err := x.Backend.StreamSSHKeys(ctx)
		if err != nil {
			return nil, err
		}
		return streamedRows(l, nil, keyRow), nil
	}},
	Show:       showKey,
	ShowFields: fieldsOf(keyFields),
	ListFields: rowFieldsOf(keyRow),
}

func keyRow(k backend.SSHKey) Row {
	return Row{ID: k.ID, Name: k.Name, Fields: []Field{strField("user", "user", k.User), strField("type", "type", k.Type),
		strField("fingerprint", "fingerprint", k.Fingerprint)}}
}

func keyFields(k backend.SSHKey) []Field {
	return []Field{strField("Name", "name", k.Name), strField("Id", "id", k.ID), strField("User", "user", k.User),
		strField("Type", "type", k.Type), strField("Fingerprint", "fingerprint", k.Fingerprint), timeField("Created", "created", k.CreatedAt)}
}

// showKey finds the key among those the user may see: the backend looks
// keys up by id only.
func showKey(ctx context.Context, x *Exec) ([]Field, error) {
	keys, err := x.Backend.SSHKeys(ctx)
	if err != nil {
		return nil, err
	}
	var found []backend.SSHKey
	for _, k := range keys {
		if x.Cmd.Instance.ByID && k.ID == x.Cmd.Instance.Value || !x.Cmd.Instance.ByID && k.Name == x.Cmd.Instance.Value {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return nil, &backend.Error{Kind: backend.KindNotFound, Msg: "SshKey " + x.Cmd.Instance.String() + " not found"}
	case 1:
		return keyFields(found[0]), nil
	}
	ids := make([]string, len(found))
	for i, k := range found {
		ids[i] = k.ID
	}
	return nil, &backend.Error{Kind: backend.KindAmbiguous, Msg: "several SshKey objects are called " + x.Cmd.Instance.Value + " (" + strings.Join(ids, ", ") + "); name one with id="}
}

func createSSHKeySpec() *Spec {
	return &Spec{
		Type: "SshKey", Help: "Register a public key a user may log in with (your own; Administrators for anyone).",
		Attrs: []Attr{
			{Name: "name", Kind: AttrString, Required: true, Help: "a name for the key"},
			{Name: "key", Kind: AttrString, Required: true, Help: "the public key as in authorized_keys, quoted: \"ssh-ed25519 AAAA... comment\""},
			{Name: "user", Kind: AttrObject, Object: "User", Help: "whose key it is (default: yourself)"},
		},
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			user := x.Actor.User // yourself, unless user= names another
			if u := optStr(x, "user"); u != nil {
				user = *u
			}
			k, err := x.Backend.CreateSSHKey(ctx, objectRef(user), x.Str("name"), x.Str("key"))
			return rowOf(k.ID, k.Name, err)
		},
	}
}

func deleteSSHKeySpec() *Spec {
	return &Spec{
		Type: "SshKey", Instance: true, Help: "Delete an SSH key (by id: list SshKey shows them).",
		Run: func(ctx context.Context, x *Exec) (*Result, error) {
			if x.Cmd.Instance == nil || !x.Cmd.Instance.ByID {
				return nil, failf(CodeMissingInstance, "SSH keys are named by id: delete SshKey id=<id> (list SshKey shows them)")
			}
			k, err := x.Backend.DeleteSSHKey(ctx, x.Cmd.Instance.Value)
			return rowOf(k.ID, k.Name, err)
		},
	}
}
