#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "services/scaffolder/domain/answers.h"
#include "services/scaffolder/domain/renderer.h"
#include "services/scaffolder/domain/template_catalog.h"

namespace orchestrator::scaffolder {
namespace {
namespace fs = std::filesystem;

// A template directory written by the test.
class TemplateDir {
 public:
  TemplateDir()
      : root_(fs::temp_directory_path() /
              ("tmpl-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    fs::remove_all(root_);
    fs::create_directories(root_ / "files");
  }
  ~TemplateDir() { fs::remove_all(root_); }

  void Manifest(const std::string& json) { Write(root_ / "template.json", json); }
  void File(const std::string& path, const std::string& text) {
    Write(root_ / "files" / path, text);
  }
  std::string path() const { return root_.string(); }

  static void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

 private:
  static inline int counter_ = 0;
  fs::path root_;
};

constexpr char kManifest[] = R"({
  "id": "demo", "version": "1.2.0", "displayName": "Demo", "language": "python",
  "questions": [
    {"name": "service_name", "type": "QUESTION_TYPE_STRING", "defaultValue": "{{project_name}}-svc",
     "pattern": "[a-z][a-z0-9-]{2,40}", "patternHelp": "lowercase letters, digits and hyphens"},
    {"name": "workers", "type": "QUESTION_TYPE_INTEGER", "defaultValue": "2", "min": 1, "max": 16},
    {"name": "metrics", "type": "QUESTION_TYPE_BOOLEAN", "defaultValue": "false"},
    {"name": "level", "type": "QUESTION_TYPE_CHOICE", "choices": ["info", "debug"], "defaultValue": "info"},
    {"name": "owner_email", "required": true},
    {"name": "api_key", "secret": true, "secretName": "API_KEY"}
  ],
  "runContract": {"buildFile": "Containerfile", "port": 8080, "healthPath": "/healthz",
                  "testCommand": ["python3", "-m", "unittest"]},
  "copyOnly": ["raw/**"]
})";

ProjectFacts Project() { return {"prj_1", "shop"}; }

TEST(TemplateTest, LoadsManifestAndListsFiles) {
  TemplateDir t;
  t.Manifest(kManifest);
  t.File("app.py", "NAME = '{{service_name}}'\n");
  t.File("{{service_name}}/README.md", "# {{service_name}}\n");
  auto loaded = LoadTemplate(t.path(), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->manifest.id(), "demo");
  ASSERT_EQ(loaded->manifest.files_size(), 2);
  EXPECT_EQ(loaded->manifest.files(0), "app.py");
  EXPECT_EQ(loaded->manifest.run_contract().port(), 8080);
}

TEST(TemplateTest, RefusesFileNamesThatEscapeWhenLoaded) {
  {
    TemplateDir t;
    // A rendered name that climbs out with the defaults.
    t.Manifest(
        R"({"id": "evil", "version": "1", "questions": [{"name": "dir", "defaultValue": ".."}],
      "runContract": {"buildFile": "Containerfile", "port": 1, "healthPath": "/", "testCommand": ["true"]}})");
    t.File("{{dir}}/x", "x");
    auto loaded = LoadTemplate(t.path(), {});
    ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find("leaves the project"), std::string::npos);
  }
  {
    TemplateDir t;
    t.Manifest(
        R"({"id": "evil", "version": "1", "questions": [{"name": "dir", "defaultValue": "/etc"}],
      "runContract": {"buildFile": "Containerfile", "port": 1, "healthPath": "/", "testCommand": ["true"]}})");
    t.File("{{{dir}}}", "x");
    EXPECT_EQ(LoadTemplate(t.path(), {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    TemplateDir t;
    t.Manifest(kManifest);
    t.File("a.txt", "x");
    fs::create_symlink("/etc/passwd", fs::path(t.path()) / "files" / "passwd");
    auto loaded = LoadTemplate(t.path(), {});
    ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find("symbolic links"), std::string::npos);
  }
  {
    TemplateDir t;
    t.Manifest(kManifest);
    t.File(".git/hooks/post-checkout", "#!/bin/sh\n");
    auto loaded = LoadTemplate(t.path(), {});
    ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find(".git"), std::string::npos);
  }
}

TEST(TemplateTest, RefusesBadManifests) {
  TemplateDir t;
  t.File("a", "a");
  t.Manifest(R"({"id": "Bad Id", "version": "1"})");
  EXPECT_EQ(LoadTemplate(t.path(), {}).status().code(), absl::StatusCode::kInvalidArgument);
  t.Manifest(R"({"id": "ok", "version": "1", "questions": [{"name": "x", "pattern": "("}],
    "runContract": {"buildFile": "C", "port": 1, "healthPath": "/", "testCommand": ["true"]}})");
  auto s = LoadTemplate(t.path(), {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("questions[0].pattern"), std::string::npos) << s;
  t.Manifest(R"({"id": "ok", "version": "1", "unknownField": 1})");
  EXPECT_EQ(LoadTemplate(t.path(), {}).status().code(), absl::StatusCode::kInvalidArgument);
  t.Manifest(R"({"id": "ok", "version": "1", "runContract": {"buildFile": "C", "port": 0,
    "healthPath": "/", "testCommand": ["true"]}})");
  EXPECT_NE(LoadTemplate(t.path(), {}).status().message().find("run_contract.port"),
            std::string::npos);
}

TEST(AnswersTest, DefaultsTypesAndValidatorsNameTheQuestion) {
  TemplateDir t;
  t.Manifest(kManifest);
  t.File("a", "a");
  auto loaded = LoadTemplate(t.path(), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto& m = loaded->manifest;

  auto ok = ResolveAnswers(m, {{"owner_email", "a@b.c"}, {"metrics", "yes"}, {"api_key", "s3cret"}},
                           Project());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->values.at("service_name"), "shop-svc");  // default from the project's name
  EXPECT_EQ(ok->values.at("workers"), "2");
  EXPECT_EQ(ok->values.at("metrics"), "true");
  EXPECT_EQ(ok->values.count("api_key"), 0u);
  EXPECT_EQ(ok->secrets.at("API_KEY"), "s3cret");

  auto refused = [&](std::map<std::string, std::string> given, const std::string& field) {
    given.emplace("owner_email", "a@b.c");
    auto r = ResolveAnswers(m, given, Project());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status();
  };
  refused({{"service_name", "Not Valid"}}, "answers.service_name: lowercase letters");
  refused({{"workers", "17"}}, "answers.workers: must be between 1 and 16");
  refused({{"workers", "two"}}, "answers.workers");
  refused({{"metrics", "maybe"}}, "answers.metrics");
  refused({{"level", "trace"}}, "answers.level: must be one of: info, debug");
  refused({{"nope", "1"}}, "answers.nope");
  refused({{"service_name", "a\nb"}}, "answers.service_name");
  auto missing = ResolveAnswers(m, {}, Project());
  EXPECT_NE(missing.status().message().find("answers.owner_email: required"), std::string::npos);
}

TEST(RendererTest, RendersFilesPathsAndAnswersRecordWithoutSecrets) {
  TemplateDir t;
  t.Manifest(kManifest);
  t.File("app.py", "NAME = '{{service_name}}'\n{{#metrics}}METRICS = True\n{{/metrics}}");
  t.File("{{service_name}}/README.md", "# {{service_name}} for {{project_name}}\n");
  t.File("raw/keep.txt", "{{not rendered}}");
  t.File("src/{{{service_name}}}.txt", "raw name");
  auto loaded = LoadTemplate(t.path(), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto answers = ResolveAnswers(
      loaded->manifest, {{"owner_email", "a@b.c"}, {"metrics", "true"}, {"api_key", "s3cret"}},
      Project());
  ASSERT_TRUE(answers.ok());
  const fs::path out = fs::path(t.path()) / "out";
  ASSERT_TRUE(RenderProject(*loaded, *answers, Project(), out.string()).ok());
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(out / "app.py"), "NAME = 'shop-svc'\nMETRICS = True\n");
  EXPECT_EQ(read(out / "shop-svc" / "README.md"), "# shop-svc for shop\n");
  EXPECT_EQ(read(out / "raw" / "keep.txt"), "{{not rendered}}");
  EXPECT_EQ(read(out / "src" / "shop-svc.txt"), "raw name");
  const std::string record = read(out / kAnswersFile);
  EXPECT_NE(record.find("\"_template\": \"demo\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"_version\": \"1.2.0\""), std::string::npos);
  EXPECT_NE(record.find("\"healthPath\": \"/healthz\""), std::string::npos);
  EXPECT_NE(record.find("\"service_name\": \"shop-svc\""), std::string::npos);
  EXPECT_EQ(record.find("s3cret"), std::string::npos);
  EXPECT_EQ(record.find("api_key"), std::string::npos);

  // An answer that would write outside the project (through an unescaped
  // {{{name}}}) is refused at render time.
  ResolvedAnswers evil = *answers;
  evil.values["service_name"] = "../../escape";
  auto s = RenderProject(*loaded, evil, Project(), (fs::path(t.path()) / "out2").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(fs::path(t.path()) / "escape"));
}

}  // namespace
}  // namespace orchestrator::scaffolder
