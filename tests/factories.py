import datetime

import factory

from recommendations.models import EndUser, EventType, Interaction, Item


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndUser
        django_get_or_create = ("external_id",)

    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda user: f"{user.external_id}@example.com")
    email_opt_in = True


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item
        django_get_or_create = ("external_id",)

    external_id = factory.Sequence(lambda n: f"item-{n}")
    title = factory.Sequence(lambda n: f"Item number {n}")
    url = factory.LazyAttribute(lambda item: f"https://example.com/items/{item.external_id}")
    categories = factory.LazyFunction(lambda: ["news"])


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    event_id = factory.Sequence(lambda n: f"event-{n}")
    user = factory.SubFactory(EndUserFactory)
    item = factory.SubFactory(ItemFactory)
    event_type = factory.LazyFunction(lambda: EventType.objects.get(name="view"))
    timestamp = factory.Faker("date_time_this_year", tzinfo=datetime.UTC)
