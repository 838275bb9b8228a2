#include "services/common/containers/engine_errors.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/containers/json_fields.h"

namespace orchestrator::containers {
namespace {

// `text` on one line: control characters as spaces, bounded, trimmed.
std::string OneLine(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  const bool cut = text.size() > kMaxEngineMessageBytes;
  std::string line(text.substr(0, cut ? kMaxEngineMessageBytes - 3 : text.size()));
  for (char& c : line) {
    if (absl::ascii_iscntrl(c)) c = ' ';
  }
  if (cut) line += "...";
  return line;
}

}  // namespace

std::string EngineMessage(const http::Response& response) {
  const nlohmann::json body = ParseJson(response.body);
  std::string message = body.is_object() ? StringField(body, "message") : response.body;
  message = OneLine(message);
  return message.empty() ? absl::StrCat("HTTP ", response.status) : message;
}

absl::Status AnswerStatus(const http::Response& response, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", EngineMessage(response));
  switch (response.status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::FailedPreconditionError(message);
    case 500:
      return absl::InternalError(message);
    case 502:
    case 503:
    case 504:
      return absl::UnavailableError(message);
    default:
      if (response.status > 400 && response.status < 500) {
        return absl::FailedPreconditionError(message);
      }
      return absl::InternalError(absl::StrCat(what, ": unexpected answer HTTP ", response.status,
                                              " (", EngineMessage(response), ")"));
  }
}

absl::Status ExchangeStatus(const absl::Status& status, absl::string_view engine,
                            absl::string_view method, absl::string_view what) {
  // HttpClient's message starts with the method and the server, said here
  // already.
  absl::string_view detail = status.message();
  absl::ConsumePrefix(&detail, absl::StrCat(method, " ", engine, ": "));
  return absl::Status(status.code(),
                      absl::StrCat("the container engine at ", engine, ": ", what, ": ", detail));
}

}  // namespace orchestrator::containers
