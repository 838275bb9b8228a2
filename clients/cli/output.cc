#include "clients/cli/output.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_replace.h"
#include "services/common/commands/format.h"

namespace orchestrator::cli {

using commands::Command;
using commands::FormatPath;
using commands::KeyValues;
using commands::RenderKeyValues;
using commands::RenderTable;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string Json(const Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

void PrintResponse(const Command& c, const Message& resp, absl::Time now, std::ostream& out,
                   std::ostream& err) {
  const auto* d = resp.GetDescriptor();
  const auto* r = resp.GetReflection();
  if (!c.list_field.empty()) {
    const FieldDescriptor* list = d->FindFieldByName(c.list_field);
    auto other = KeyValues(resp, now, {c.list_field, "next_page_token"});
    if (!other.empty()) out << RenderKeyValues(other) << "\n";
    std::vector<std::string> headers;
    for (const auto& col : c.columns) headers.push_back(col.header);
    std::vector<std::vector<std::string>> rows;
    for (int i = 0; i < r->FieldSize(resp, list); ++i) {
      const Message& item = r->GetRepeatedMessage(resp, list, i);
      std::vector<std::string> row;
      for (const auto& col : c.columns) {
        row.push_back(col.format ? col.format(item, now) : FormatPath(item, col.path, now, true));
      }
      rows.push_back(std::move(row));
    }
    if (rows.empty()) {
      out << "no " << absl::StrReplaceAll(c.list_field, {{"_", " "}}) << "\n";
    } else {
      out << RenderTable(headers, rows);
    }
    if (const FieldDescriptor* next = d->FindFieldByName("next_page_token"); next != nullptr) {
      const std::string token = r->GetString(resp, next);
      if (!token.empty()) err << "more: add --page-token " << token << "\n";
    }
    return;
  }
  const Message* shown = &resp;
  if (!c.show_field.empty()) {
    const FieldDescriptor* f = d->FindFieldByName(c.show_field);
    if (f != nullptr && r->HasField(resp, f)) shown = &r->GetMessage(resp, f);
  }
  auto pairs = KeyValues(*shown, now);
  if (pairs.empty()) {
    out << "ok\n";
  } else {
    out << RenderKeyValues(pairs);
  }
}

}  // namespace orchestrator::cli
