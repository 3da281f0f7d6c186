import type { Knex } from 'knex'

export async function up (knex: Knex): Promise<void> {
  await knex.schema.createTable('lunch_week', (table) => {
    table.bigIncrements('id')
    table.date('week_of').notNullable().unique()
    table.boolean('is_published').notNullable().defaultTo(false)
    table.timestamps(true, true)
  })
  // A week is named by its Monday; ISO day of week 1 is Monday.
  await knex.raw('ALTER TABLE lunch_week ADD CONSTRAINT lunch_week_week_of_monday CHECK (extract(isodow FROM week_of) = 1)')

  await knex.schema.createTable('lunch_day', (table) => {
    table.bigIncrements('id')
    table.bigInteger('lunch_week_id').notNullable()
      .references('id').inTable('lunch_week').onDelete('CASCADE')
    table.date('day').notNullable()
    table.text('menu_details').notNullable().defaultTo('')
    table.unique(['lunch_week_id', 'day'])
  })
}

export async function down (knex: Knex): Promise<void> {
  await knex.schema.dropTable('lunch_day')
  await knex.schema.dropTable('lunch_week')
}
