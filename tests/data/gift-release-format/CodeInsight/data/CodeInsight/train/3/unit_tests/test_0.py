assert test('2020-01-02') == datetime(2020, 1, 2).date(), 'Test failed'
