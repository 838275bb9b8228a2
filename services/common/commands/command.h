#pragma once

// The command table: the CLI (clients/cli) builds its commands from it, the
// runner writes the skills export of it into each sandbox, and sessions give
// agents the grants of its role profiles (profiles.h). It lives here because
// services/ never depends on clients/.

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/common/commands/rpc_call.h"

namespace orchestrator::commands {

// A value the user gives: a positional argument or a --flag, and the
// request field it sets ("project.name" reaches into a sub-message).
struct Param {
  std::string name;   // the flag without "--", or the positional's name
  std::string field;  // request field path
  std::string help;
  bool positional = false;
  bool required = false;
  bool is_switch = false;        // --name alone sets the (bool) field
  bool from_file = false;        // the value is a path; the field gets its contents
  bool stdin_if_absent = false;  // not given: read from standard input (secrets)
  bool one_item_each = false;    // repeated: each value one item, commas kept (phrases)
};

// A column of a table: a header and a field path in each listed item.
struct Column {
  std::string header;
  std::string path;
  // Instead of `path`: how to show the item.
  std::function<std::string(const Message& item, absl::Time now)> format = nullptr;
};

// One command of the CLI, and the one RPC it calls. The same table drives
// parsing, --help, rendering, and the agents' skills export; the permission
// a command needs is the one its RPC declares in the contract.
struct Command {
  std::string group;  // "project"; empty for top-level commands
  std::string name;   // "create"
  std::string summary;
  RpcCall rpc;
  std::vector<Param> params;
  // Output for people: a table of the response's repeated `list_field`, or
  // the fields of `show_field` (empty: the whole response) one per line.
  std::string list_field;
  std::vector<Column> columns;
  std::string show_field;
  // Set when the response names a job: the command takes --follow.
  std::string job_id_path;
  // The response is a page of that job's own events (a deploy's log):
  // --follow prints the job's events from its start instead of the page.
  bool follow_replaces_answer = false;
  // Destructive: refused without --confirm, which sets the request's confirm.
  bool needs_confirm = false;
  // Free text for --help (examples, what the output means).
  std::string details;
  // Streams, for people: the lines one response prints.
  std::function<std::string(const Message& response, absl::Time now)> line = nullptr;

  std::string path() const { return group.empty() ? name : group + " " + name; }
  // The permission the contract declares ("" when any authenticated caller
  // may call it).
  std::string permission() const;
  // "orchestrator.projects.v1.ProjectService/CreateProject".
  std::string rpc_path() const;
  // "orchestrator project create NAME [--description TEXT] ..."
  std::string usage() const;
};

// Every command, in the order --help lists them.
const std::vector<Command>& Commands();

// The groups, in order, with a line each.
struct Group {
  std::string name;
  std::string summary;
};
const std::vector<Group>& Groups();

const Command* FindCommand(const std::string& group, const std::string& name);

}  // namespace orchestrator::commands
