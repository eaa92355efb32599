-- The workspace app's state DDL (corpora/workspace/state.sql) with one change: a UNIQUE index
-- on projects.ownerId, so that an owner's second project cannot be inserted.
CREATE TABLE "users" ("id" text primary key   , "name" text   not null default '', "email" text   not null default '', "role" text   not null default 'member', "avatarUrl" text    , "isActive" integer   not null default 1, "settings" text    , "createdAt" text   not null , "updatedAt" text    ) strict;
CREATE INDEX "users_email" on "users" ("email");
CREATE TABLE "projects" ("id" text primary key   , "name" text   not null default '', "description" text    , "ownerId" text   not null , "color" text   not null default '#888888', "budget" real    , "visibility" text   not null default 'team', "meta" text    , "archivedAt" text    , "createdAt" text   not null ) strict;
CREATE TABLE "todos" ("id" text primary key   , "projectId" text   not null , "text" text   not null default '', "completed" integer   not null default 0, "priority" integer   not null default 0, "estimate" real    , "assigneeId" text    , "dueDate" integer    , "tags" text   not null default '[]', "checklist" text   not null default '[]', "createdAt" text   not null , "updatedAt" text    , "completedAt" text    , "deletedAt" text    ) strict;
CREATE INDEX "todos_project" on "todos" ("projectId");
CREATE INDEX "todos_assignee" on "todos" ("assigneeId");
CREATE TABLE "comments" ("id" text primary key   , "todoId" text   not null , "authorId" text   not null , "body" text   not null default '', "mentions" text   not null default '[]', "reactions" text   not null default '{}', "createdAt" text   not null , "editedAt" text    ) strict;
CREATE INDEX "comments_todo" on "comments" ("todoId");
CREATE TABLE "project_stats" ("projectId" text primary key   , "todoCount" integer   not null default 0, "completedCount" integer   not null default 0, "commentCount" integer   not null default 0, "lastActivityAt" text    ) strict;
CREATE TABLE "uiState" ("id" text primary key   , "value" text   not null ) strict;
CREATE UNIQUE INDEX "projects_owner" on "projects" ("ownerId");
