// A chat app whose materializers read the state with ctx.query (corpora/chat-query): a new
// message is numbered from its conversation's count of messages so far (a row read, used in
// two statements and a text), an archived conversation keeps its transcript (rows, stored as
// JSON), a recount takes the query builder's count of the messages left (a scalar), and a
// message to a conversation that does not exist changes nothing (a branch on the query's
// result).
import { Events, makeSchema, Schema, State } from '@livestore/livestore'

const { SQLite } = State

export const tables = {
  conversations: SQLite.table({
    name: 'conversations',
    columns: {
      id: SQLite.text({ primaryKey: true }),
      title: SQLite.text({ default: '' }),
      messageCount: SQLite.integer({ default: 0 }),
      // Messages not deleted, as last counted.
      visibleCount: SQLite.integer({ nullable: true }),
      lastMessageId: SQLite.text({ nullable: true }),
      transcript: SQLite.json({
        schema: Schema.Array(Schema.Struct({ seq: Schema.Int, authorId: Schema.String })),
        nullable: true,
      }),
      archivedAt: SQLite.datetime({ nullable: true }),
    },
  }),
  // Numbered per conversation: a composite key.
  messages: SQLite.table({
    name: 'messages',
    columns: {
      conversationId: SQLite.text({ primaryKey: true }),
      seq: SQLite.integer({ primaryKey: true }),
      id: SQLite.text(),
      authorId: SQLite.text(),
      body: SQLite.text({ default: '' }),
      heading: SQLite.text(),
      sentAt: SQLite.datetime(),
    },
  }),
}

export const events = {
  conversationStarted: Events.synced({
    name: 'ConversationStarted',
    schema: Schema.Struct({ id: Schema.String, title: Schema.String }),
  }),
  messageSent: Events.synced({
    name: 'MessageSent',
    schema: Schema.Struct({
      id: Schema.String,
      conversationId: Schema.String,
      authorId: Schema.String,
      body: Schema.String,
      sentAt: Schema.Date,
    }),
  }),
  messageDeleted: Events.synced({
    name: 'MessageDeleted',
    schema: Schema.Struct({ conversationId: Schema.String, seq: Schema.Int }),
  }),
  conversationRecounted: Events.synced({
    name: 'ConversationRecounted',
    schema: Schema.Struct({ id: Schema.String }),
  }),
  conversationArchived: Events.synced({
    name: 'ConversationArchived',
    schema: Schema.Struct({ id: Schema.String, archivedAt: Schema.Date }),
  }),
}

const { conversations, messages } = tables

const materializers = State.SQLite.materializers(events, {
  ConversationStarted: ({ id, title }) => conversations.insert({ id, title }).onConflict('id', 'ignore'),

  MessageSent: ({ id, conversationId, authorId, body, sentAt }, ctx) => {
    const [conversation] = ctx.query({
      query: 'SELECT messageCount, title FROM conversations WHERE id = ?',
      bindValues: [conversationId],
    })
    if (conversation === undefined) return []
    const seq = conversation.messageCount + 1
    return [
      messages.insert({ conversationId, seq, id, authorId, body, heading: `${conversation.title} #${seq}`, sentAt }),
      conversations.update({ messageCount: seq, lastMessageId: id }).where({ id: conversationId }),
    ]
  },

  MessageDeleted: ({ conversationId, seq }) => messages.delete().where({ conversationId, seq }),

  ConversationRecounted: ({ id }, ctx) => {
    const count = ctx.query(messages.where({ conversationId: id }).count())
    return conversations.update({ visibleCount: count }).where({ id })
  },

  ConversationArchived: ({ id, archivedAt }, ctx) => {
    const transcript = ctx.query({
      query: 'SELECT seq, authorId FROM messages WHERE conversationId = $id ORDER BY seq',
      bindValues: { id },
    })
    return conversations.update({ archivedAt, transcript }).where({ id })
  },
})

export const schema = makeSchema({ events, state: State.SQLite.makeState({ tables, materializers }) })
